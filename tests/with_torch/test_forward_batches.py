"""The model side of a render run: --dtype (autocast) and --decode-workers (DataLoader)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from PIL import Image  # noqa: E402

from anycapture.attention import AttentionRecorder  # noqa: E402
from anycapture.errors import UsageError  # noqa: E402
from anycapture.images import ImageInputError, Preprocessor  # noqa: E402
from anycapture.loading import load_model  # noqa: E402
from anycapture.run import forward  # noqa: E402
from anycapture.run.decode import decode, decoded_batches  # noqa: E402
from anycapture.run.forward import forward_views  # noqa: E402
from anycapture.run.jobs import choose_decode_workers  # noqa: E402

CAT = Path(__file__).resolve().parents[2] / "assets" / "cat.jpg"


def _maps(dtype: str | None) -> tuple[dict[str, np.ndarray], list[bool]]:
    """Maps of one image through vit_tiny (loaded in ``dtype``), and whether each
    attention module ran under autocast."""
    torch.manual_seed(0)
    loaded = load_model("vit_tiny", pretrained=False, dtype=dtype)
    recorder = AttentionRecorder(loaded.module)
    preprocessor = Preprocessor.for_model(loaded.module)
    autocasting: list[bool] = []
    for block in loaded.module.blocks:
        block.attn.register_forward_hook(
            lambda *_: autocasting.append(torch.is_autocast_enabled("cpu"))
        )
    view = decode(CAT, preprocessor)[1]  # type: ignore[index]
    return forward_views(loaded.module, recorder, preprocessor, [view], "cpu", dtype), autocasting


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_dtypes_run_under_autocast_and_give_float32_attention(dtype: str) -> None:
    full, plain = _maps(None)
    half, autocast = _maps(dtype)
    assert plain and not any(plain)
    assert autocast and all(autocast)  # every attention module ran under autocast
    assert full.keys() == half.keys()
    for name in full:
        assert half[name].dtype == np.float32 and half[name].shape == full[name].shape
        assert np.allclose(half[name].sum(-1), 1.0, atol=1e-2)  # still attention rows
        assert np.abs(half[name] - full[name]).max() < 3e-2
    assert any(not np.array_equal(half[n], full[n]) for n in full)  # it did run in half


def test_float32_runs_without_autocast() -> None:
    maps, autocast = _maps("float32")
    assert autocast and not any(autocast)
    assert all(m.dtype == np.float32 for m in maps.values())


def test_autocast_refused_by_the_device_is_a_usage_error(monkeypatch) -> None:
    def refuse(**_: Any) -> None:
        raise RuntimeError("User specified an unsupported autocast device_type 'xpu'")

    monkeypatch.setattr(torch, "autocast", refuse)
    with pytest.raises(UsageError, match=r"--dtype float16: autocast is not available on cpu"):
        forward.autocast("cpu", "float16")
    assert forward.autocast("cpu", "float32") is not None  # float32: no autocast at all


def _images(folder: Path, count: int) -> list[Path]:
    with Image.open(CAT) as cat:
        cat = cat.convert("RGB")
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i}.png")
        cat.rotate(i * 20).resize((100 + i * 10, 90)).save(paths[-1])
    return paths


def test_decode_workers_give_the_same_images_in_order(tmp_path: Path) -> None:
    paths = _images(tmp_path, 5)
    (tmp_path / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # corrupt
    preprocessor = Preprocessor.for_model(load_model("vit_tiny", pretrained=False).module)
    inline = list(decoded_batches(paths, preprocessor, 2, workers=0))
    loader = list(decoded_batches(paths, preprocessor, 2, workers=2))
    assert [b for b, _ in loader] == [b for b, _ in inline] == [paths[:2], paths[2:4], paths[4:]]
    for (_, a), (_, b) in zip(inline, loader, strict=True):
        for item_a, item_b in zip(a, b, strict=True):
            if isinstance(item_a, ImageInputError):  # the bad one: its error, same words
                assert type(item_b) is ImageInputError and str(item_b) == str(item_a)
                assert "img2.png" in str(item_a)
                continue
            for image_a, image_b in zip(item_a, item_b, strict=True):  # type: ignore[arg-type]
                assert np.array_equal(np.asarray(image_a), np.asarray(image_b))
    assert sum(isinstance(i, ImageInputError) for _, items in loader for i in items) == 1


class _Refusing(Preprocessor):
    def view(self, image: Image.Image) -> Image.Image:
        raise UsageError("--img-size: this view is refused")


def test_our_errors_in_a_worker_are_raised_here_as_themselves(tmp_path: Path) -> None:
    paths = _images(tmp_path, 3)
    own = Preprocessor.for_model(load_model("vit_tiny", pretrained=False).module)
    refusing = _Refusing(own.view_transforms, own.mean, own.std, own.input_hw)
    with pytest.raises(UsageError, match=r"^--img-size: this view is refused$"):
        list(decoded_batches(paths, refusing, 2, workers=1))


def test_decode_workers_default() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert choose_decode_workers(1, 100, 8) == (1, "")  # as asked
    assert choose_decode_workers(1000, 100, 8) == (  # at most a worker per core and batch
        min(cores, 12), f"--decode-workers 1000: using {min(cores, 12)} (one per CPU core "
        "and per batch after the first)")  # fmt: skip
    assert choose_decode_workers(2, 8, 8)[0] == 0  # one batch: nothing to overlap
    assert choose_decode_workers(None, 8, 8, "cuda") == (0, "")
    assert 1 <= choose_decode_workers(None, 9, 8, "cuda:1")[0] <= 4
    assert choose_decode_workers(None, 100, 8, "cpu") == (0, "")  # the forward has the cores
