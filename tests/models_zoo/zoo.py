"""The model-zoo matrix: one tiny model per family, rendered and checked against the
model's own attention.

Each family is loaded as a user brings it (``--model file.py:factory`` or a
``save_pretrained`` folder), its maps are recorded as a render records them and
compared with a reference the model itself gives: ``output_attentions=True`` where
the model returns it, else its own softmax outputs (a forward hook on ``attend``, or
``softmax`` itself, with SDPA computed eagerly).  Then the notebook API draws a figure.
Results: ``exact`` (maps within 1e-5 of the reference, drawn), ``drawn`` (drawn, with
a note saying what was not checked), ``refused`` (one line saying why).  The test
(``test_zoo.py``) and ``scripts/zoo_table.py`` (the README's table) both run it.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CAT = HERE.parents[1] / "assets" / "cat.jpg"
FACTORIES = HERE / "vit_pytorch_models.py"
EXACT = 1e-5


@dataclass(frozen=True)
class Family:
    name: str  # as the README's table shows it
    library: str  # vit-pytorch, torchvision, transformers
    key: str  # factory name or hf_zoo family
    expected: str  # exact, drawn or refused
    img_size: int | None = None


@dataclass
class Result:
    family: Family
    status: str
    layers: int = 0
    max_diff: float | None = None
    note: str = ""
    seconds: float = 0.0
    layer_names: list[str] = field(default_factory=list)


def _families() -> list[Family]:
    from .vit_pytorch_models import INPUT_SIZE

    vp = [
        ("ViT", "vit"),
        ("SimpleViT", "simple_vit"),
        ("CaiT", "cait"),
        ("DeepViT", "deep_vit"),
        ("CrossViT", "cross_vit"),
        ("T2TViT", "t2t_vit"),
        ("CvT", "cvt"),
        ("LeViT", "levit"),
        ("PiT", "pit"),
        ("RegionViT", "region_vit"),
        ("MaxViT", "max_vit"),
        ("NaViT", "na_vit"),
    ]
    tv = [  # the classes of swin_t, swin_v2_t and maxvit_t, tiny (test_zoo runs those too)
        ("SwinTransformer (swin_t)", "swin"),
        ("SwinTransformer V2 (swin_v2_t)", "swin_v2"),
        ("MaxVit (maxvit_t)", "maxvit"),
    ]
    hf = [
        ("Data2VecVision", "data2vec_vision", "exact"),
        ("DPT", "dpt", "exact"),
        ("YOLOS", "yolos", "exact"),
        ("Swinv2", "swinv2", "exact"),
        ("DonutSwin", "donut_swin", "exact"),
        ("PVT", "pvt", "exact"),
        ("PvtV2", "pvt_v2", "exact"),
        ("LeViT", "levit", "exact"),
        ("Hiera", "hiera", "exact"),
        ("MobileViT", "mobilevit", "exact"),
        ("MobileViTV2", "mobilevitv2", "refused"),
        ("BLIP (vision)", "blip", "exact"),
        ("GLPN", "glpn", "exact"),
        ("OWLv2", "owlv2", "exact"),
        ("SigLIP2", "siglip2", "refused"),
        ("VideoMAE", "videomae", "refused"),
        ("X-CLIP", "xclip", "refused"),
    ]
    timm = [  # families whose attention needed more than the `attn` local
        ("ViT (vit_tiny_patch16_224)", "vit_tiny_patch16_224", 32),
        ("SHViT (shvit_s1)", "shvit_s1", None),
        ("NesT (nest_tiny)", "nest_tiny", 64),
        ("BoTNet (botnet26t_256)", "botnet26t_256", 256),
        ("XCiT (xcit_nano_12_p16_224)", "xcit_nano_12_p16_224", 32),
    ]
    return [
        *(Family(n, "timm", k, "exact", size) for n, k, size in timm),  # type: ignore[arg-type]
        *(Family(n, "vit-pytorch", k, "exact", INPUT_SIZE.get(k, 32)) for n, k in vp),
        *(Family(n, "torchvision", k, "exact", INPUT_SIZE.get(k, 32)) for n, k in tv),
        *(Family(n, "transformers", k, e) for n, k, e in hf),
    ]


FAMILIES = _families()


def run(family: Family) -> Result:
    """Load, record, compare and draw ``family``; a refusal is a result, not an error."""
    from anycapture.errors import UsageError

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        try:
            result = _run(family, Path(folder))
        except UsageError as exc:
            result = Result(family, "refused", note=_one_line(str(exc)))
    result.seconds = time.perf_counter() - started
    return result


def _run(family: Family, folder: Path) -> Result:
    import torch

    from anycapture.attention import AttentionRecorder
    from anycapture.images import Preprocessor
    from anycapture.loading import load_model
    from anycapture.notebook import attention_maps, figure

    spec = _spec(family, folder)
    size = (family.img_size, family.img_size) if family.img_size else None
    timm = family.library == "timm"
    loaded = load_model(spec, pretrained=False, img_size=size if timm else None)
    model = loaded.module
    pre = Preprocessor.for_model(model, size, image_processor=loaded.image_processor)
    from PIL import Image

    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    with torch.inference_mode():
        plain = model(x)
        reference, how = _reference(model, x)
        recorder = AttentionRecorder(model)
        with recorder.recording():
            captured = model(x)
        maps = recorder.take()
    if timm:  # fused attention is switched off while recording: last bits may differ
        if not torch.allclose(plain, captured, atol=1e-5, rtol=1e-4):
            raise AssertionError(f"{family.name}: outputs differ with capture on")
    elif not _same(plain, captured):
        raise AssertionError(f"{family.name}: outputs differ with capture on")
    # a folder is loaded again as a user would; a factory's module is passed as it is
    target = spec if family.library in ("transformers", "timm") else model
    result = attention_maps(target, CAT, img_size=size, pretrained=False)
    figure("heads", result, layer=-1)
    notes = [f"{len(recorder.skipped)} layers left out"] if recorder.skipped else []
    diff = _max_diff(list(maps.values()), reference)
    if diff is None:
        notes.append(f"no reference to compare with ({how})")
    status = "exact" if diff is not None and diff <= EXACT and not notes else "drawn"
    note = "; ".join(notes) or f"vs {how}"
    if timm and not torch.equal(plain, captured):
        note += "; outputs within 1e-5 (fused attention off while recording)"
    return Result(family, status, len(maps), diff, note, layer_names=list(maps))


def _spec(family: Family, folder: Path) -> str:
    if family.library == "transformers":
        from .hf_zoo import save

        return str(save(family.key, folder / family.key))
    if family.library == "timm":
        return family.key
    return f"{FACTORIES}:{family.key}"


def _reference(model: Any, x: Any) -> tuple[list[Any], str]:
    """The model's own attention: ``output_attentions`` when it returns them, else its
    softmax outputs (``attend`` hooks, else ``softmax`` itself, SDPA calls computed
    eagerly so that theirs are among them)."""
    config = getattr(model, "config", None)
    if config is not None:
        try:
            attentions = getattr(model(x, output_attentions=True), "attentions", None)
        except TypeError:
            attentions = None
        tensors = [a for a in attentions or () if hasattr(a, "numel")]
        if tensors:
            return tensors, "output_attentions"
    attends = [m._modules["attend"] for m in model.modules() if "attend" in m._modules]
    if attends:
        with _hooked(attends) as outputs:
            model(x)
        return outputs, "the `attend` modules' outputs"
    with _softmax_recorded() as outputs, _eager_sdpa() as sdpa_calls:  # a softmax too
        model(x)
    eager = " (SDPA computed eagerly)" if sdpa_calls else ""
    return outputs, f"the model's softmax outputs{eager}"


@contextlib.contextmanager
def _hooked(modules: list[Any]) -> Iterator[list[Any]]:
    outputs: list[Any] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in modules]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _softmax_recorded() -> Iterator[list[Any]]:
    """``F.softmax``, ``torch.softmax`` and ``Tensor.softmax`` over the last axis,
    their outputs kept (the functions restored afterwards)."""
    import torch
    import torch.nn.functional as F

    outputs: list[Any] = []
    originals = [(F, "softmax", F.softmax), (torch, "softmax", torch.softmax)]
    originals.append((torch.Tensor, "softmax", torch.Tensor.softmax))

    inside: list[bool] = []  # F.softmax calls Tensor.softmax: keep the outer call's

    def keeping(original: Any) -> Any:
        def softmax(tensor: Any, dim: Any = None, *args: Any, **kwargs: Any) -> Any:
            inside.append(True)
            try:
                out = original(tensor, dim, *args, **kwargs)
            finally:
                inside.pop()
            if not inside and dim in (-1, tensor.ndim - 1):
                outputs.append(out)
            return out

        return softmax

    for owner, name, original in originals:
        setattr(owner, name, keeping(original))
    try:
        yield outputs
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@contextlib.contextmanager
def _eager_sdpa() -> Iterator[list[int]]:
    """``F.scaled_dot_product_attention`` as its documented eager formula (its softmax
    is one the model made); yields a list that gets one item per call."""
    import torch
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention
    calls: list[int] = []

    def eager(q: Any, k: Any, v: Any, attn_mask: Any = None, *_: Any, **kw: Any) -> Any:
        scores = q @ k.transpose(-2, -1) * (kw.get("scale") or 1 / math.sqrt(q.shape[-1]))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        calls.append(1)
        return scores.softmax(-1) @ v

    F.scaled_dot_product_attention = eager
    try:
        yield calls
    finally:
        F.scaled_dot_product_attention = original


def _max_diff(maps: list[np.ndarray], reference: list[Any]) -> float | None:
    """Each map against the next reference output of the same size, in call order."""
    if not reference or not maps:
        return None
    worst, position = 0.0, 0
    for array in maps:
        while position < len(reference) and reference[position].numel() != array.size:
            position += 1
        if position == len(reference):
            return None
        expected = reference[position].float().numpy()
        heads = array.shape[1]
        if expected.ndim == 5 and expected.shape[1] == heads != expected.shape[2]:
            expected = expected.swapaxes(1, 2)  # (B, H, blocks, ...): blocks as windows
        expected = expected.reshape(array.shape)
        worst = max(worst, float(np.abs(array - expected).max()))
        position += 1
    return worst


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "to_tuple"):
        return _same(a.to_tuple(), b.to_tuple())
    if isinstance(a, dict):
        return all(_same(a[k], b[k]) for k in a)
    return a == b


def _one_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
