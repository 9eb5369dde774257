"""``explain``: Chefer et al. relevance, checked against the demo model's known answer,
a direct implementation on hooks (timm ViT) and a hand-written MultiheadAttention."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from anycapture.errors import UsageError  # noqa: E402
from anycapture.explain import class_names, explain, pick_classes  # noqa: E402
from tests.models.known import build as known_model  # noqa: E402
from tests.models.known import mha_vit  # noqa: E402

# measured max abs differences must stay below these (float64 relevance on both sides)
HOOKS_TOLERANCE = 1e-6


def tiny_vit(num_classes: int = 10, depth: int = 3) -> Any:
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, depth=depth, num_classes=num_classes
    )
    return model.eval()


def chefer_on_hooks(model: Any, image: Any, target: int) -> np.ndarray:
    """Chefer et al.'s reference recipe: hooks on each block's ``attn_drop`` keep the map
    and its gradient; backward from the target logit; R += mean_h(relu(grad * A)) @ R."""
    maps: list[Any] = []
    grads: dict[int, Any] = {}

    def keep(_module: Any, _args: Any, output: Any) -> None:
        index = len(maps)
        maps.append(output)
        output.register_hook(lambda g: grads.__setitem__(index, g))

    handles = []
    for block in model.blocks:
        block.attn.fused_attn = False
        handles.append(block.attn.attn_drop.register_forward_hook(keep))
    try:
        logits = model(image)
        model.zero_grad()
        logits[0, target].backward()
    finally:
        for handle in handles:
            handle.remove()
        for block in model.blocks:
            block.attn.fused_attn = True
    tokens = maps[0].shape[-1]
    relevance = torch.eye(tokens, dtype=torch.float64)
    for i, attention in enumerate(maps):
        cam = (grads[i][0].double() * attention[0].detach().double()).clamp(min=0).mean(dim=0)
        relevance = relevance + cam @ relevance
    return relevance[0].numpy()


def test_explain_matches_a_direct_implementation_on_hooks() -> None:
    model = tiny_vit()
    torch.manual_seed(1)
    image = torch.randn(1, 3, 32, 32)
    result = explain(model, image, "top3")
    assert [m.fused_attn for m in (b.attn for b in model.blocks)] == [True] * 3  # restored
    assert [e.target.rank for e in result.images[0]] == [1, 2, 3]
    worst = 0.0
    for explanation in result.images[0]:
        reference = chefer_on_hooks(model, image, explanation.target.index)
        assert np.abs(reference[1:]).max() > 1e-4  # a real signal, not two zero maps
        worst = max(worst, float(np.abs(explanation.row - reference).max()))
    assert worst < HOOKS_TOLERANCE, f"max abs diff {worst:.3g}"
    assert any("fused attention" in note for note in result.notes)


def test_a_batch_gives_each_image_its_own_relevance() -> None:
    model = tiny_vit()
    torch.manual_seed(2)
    images = torch.randn(3, 3, 32, 32)
    together = explain(model, images)
    for i in range(3):
        alone = explain(model, images[i : i + 1]).images[0][0]
        assert together.images[i][0].target.index == alone.target.index
        assert together.images[i][0].target.probability == pytest.approx(alone.target.probability)
        np.testing.assert_allclose(together.images[i][0].row, alone.row, atol=1e-6)


def test_demo_relevance_finds_the_class_patch() -> None:
    """The truth test: the demo's class is the patch under the cross."""
    from PIL import Image

    from anycapture.demo import build_demo, make_scene
    from anycapture.images import Preprocessor

    model = build_demo()
    preprocessor = Preprocessor.for_model(model)
    rng = np.random.default_rng(2024)  # fresh scenes: training used seed 0
    scenes = [make_scene(rng) for _ in range(50)]
    views = [preprocessor.view(Image.fromarray(scene)) for scene, _ in scenes]
    result = explain(model, preprocessor.tensor(views))
    hits = 0
    for explanations in result.images:
        (explanation,) = explanations
        hits += int(np.argmax(explanation.row[1:])) == explanation.target.index
    assert hits >= 45, f"hottest patch is the predicted class's patch in only {hits}/50 scenes"
    # label names: class k is the patch r{k // 8}c{k % 8}; picked by name, it is that class
    label = scenes[0][1]
    name = f"r{label // 8}c{label % 8}"
    assert result.images[0][0].target.name == name
    (by_name,) = explain(model, preprocessor.tensor(views[:1]), name).images[0]
    assert by_name.target.index == label


def test_multihead_attention_matches_a_hand_written_forward() -> None:
    """nn.MultiheadAttention returns its weights as a reshaped view; the gradient is taken
    on the tensor it used.  Reference: the same model written out with plain tensors."""
    model = mha_vit().eval()
    torch.manual_seed(3)
    image = torch.randn(1, 3, 48, 80)
    result = explain(model, image, 5)
    x = model.patch_embed(image).flatten(2).transpose(1, 2)
    x = torch.cat([model.cls_token.expand(1, -1, -1), x], dim=1)
    maps = []
    for block in model.blocks:
        attn = block.attn
        heads, dim = attn.num_heads, attn.embed_dim
        q, k, v = torch.nn.functional.linear(
            block.norm(x), attn.in_proj_weight, attn.in_proj_bias
        ).chunk(3, dim=-1)
        q, k, v = (t.reshape(1, -1, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-2, -1) / (dim // heads) ** 0.5, dim=-1)
        maps.append(weights)
        out = (weights @ v).transpose(1, 2).reshape(1, -1, dim)
        x = x + attn.out_proj(out)
    grads = torch.autograd.grad(x[0, 0, 5], maps)
    relevance = torch.eye(x.shape[1], dtype=torch.float64)
    for attention, grad in zip(maps, grads, strict=True):
        cam = (grad[0].double() * attention[0].detach().double()).clamp(min=0).mean(dim=0)
        relevance = relevance + cam @ relevance
    reference = relevance[0].numpy()
    assert np.abs(reference[1:]).max() > 1e-4
    np.testing.assert_allclose(result.images[0][0].row, reference, atol=1e-6)


def test_refuses_models_without_class_logits_in_one_line() -> None:
    with pytest.raises(UsageError, match="needs class logits") as info:
        explain(known_model(), torch.zeros(1, 3, 48, 80))
    assert "\n" not in str(info.value)
    headless = tiny_vit(num_classes=0)
    with pytest.raises(UsageError, match="no classifier head"):
        explain(headless, torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("name", "options", "size", "why"),
    [
        ("cait_xxs24_224", {"depth": 2}, 32, "class-attention"),
        ("swin_tiny_patch4_window7_224", {"depths": (1, 1, 1, 1)}, 224, "windowed attention"),
    ],
)
def test_refuses_attention_the_rule_does_not_cover(
    name: str, options: dict[str, Any], size: int, why: str
) -> None:
    torch.manual_seed(0)
    img_size = {} if size == 224 else {"img_size": size}
    model = timm.create_model(name, pretrained=False, **img_size, **options).eval()
    with pytest.raises(UsageError, match=why) as info:
        explain(model, torch.zeros(1, 3, size, size))
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "prefix", "size"),
    [
        ("deit_tiny_distilled_patch16_224", 2, (32, 32)),  # cls + distillation token
        ("beit_base_patch16_224", 1, (32, 32)),  # relative position bias
        ("deit3_small_patch16_224", 1, (32, 32)),
        ("eva02_tiny_patch14_224", 1, (28, 28)),  # rotary embeddings
        ("vit_small_patch14_reg4_dinov2", 5, (28, 28)),  # 4 registers
    ],
)
def test_other_timm_families(name: str, prefix: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=size, depth=2, num_classes=5)
    (explanation,) = explain(model.eval(), torch.randn(1, 3, *size)).images[0]
    assert explanation.row.shape == (prefix + 4,)
    # random init: small heads (EVA) and LayerScale 1e-5 (DINOv2) make small relevance
    assert np.isfinite(explanation.row).all() and explanation.row[prefix:].max() > 0


def test_class_choice_by_index_name_and_topk() -> None:
    probabilities = np.array([0.1, 0.5, 0.15, 0.25])
    names = ["cat", "goldfish, Carassius auratus", "dog", "tabby"]
    assert pick_classes(None, probabilities, names) == [1]
    assert pick_classes("top3", probabilities, names) == [1, 3, 2]
    assert pick_classes("2", probabilities, names) == [2]
    assert pick_classes("Goldfish", probabilities, names) == [1]
    assert pick_classes("carassius auratus", probabilities, names) == [1]
    for bad, why in (("7", "out of range"), ("top9", "only 4"), ("horse", "not one of")):
        with pytest.raises(UsageError, match=why):
            pick_classes(bad, probabilities, names)
    with pytest.raises(UsageError, match="no label names"):
        pick_classes("cat", probabilities, None)


def test_label_names_from_timm_imagenet_info_and_hf_config() -> None:
    names = class_names(tiny_vit(num_classes=1000, depth=1))
    assert names is not None and len(names) == 1000 and names[1].startswith("goldfish")
    assert class_names(tiny_vit(num_classes=10, depth=1)) is None

    class HFLike(torch.nn.Module):
        config = type("Config", (), {"id2label": {1: "dog", 0: "cat"}})()

    assert class_names(HFLike()) == ["cat", "dog"]
    model = tiny_vit(num_classes=1000, depth=1)
    result = explain(model, torch.zeros(1, 3, 32, 32), "goldfish")
    target = result.images[0][0].target
    assert target.index == 1 and target.name is not None and target.name.startswith("goldfish")
    assert 0.0 < target.probability < 1.0


def test_hugging_face_vit_matches_its_own_output_attentions() -> None:
    """A module-less site (HF's eager attention function) and ``id2label`` names; the
    reference differentiates the attentions HF returns with ``output_attentions``."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.vit import modeling_vit

    from anycapture.attention import Site

    labels = {0: "cat", 1: "dog", 2: "fish"}
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    model.set_attn_implementation("eager")
    image = torch.randn(1, 3, 32, 32)
    site = Site("eager", None, modeling_vit.eager_attention_forward, "attn_weights")
    result = explain(model, image, "top3", sites=[site])
    output = model(image, output_attentions=True)
    for explanation in result.images[0]:
        assert explanation.target.name == labels[explanation.target.index]
        grads = torch.autograd.grad(
            output.logits[0, explanation.target.index], output.attentions, retain_graph=True
        )
        relevance = torch.eye(5, dtype=torch.float64)
        for attention, grad in zip(output.attentions, grads, strict=True):
            cam = (grad[0].double() * attention[0].detach().double()).clamp(min=0).mean(dim=0)
            relevance = relevance + cam @ relevance
        assert np.abs(relevance[0, 1:].numpy()).max() > 1e-5
        np.testing.assert_allclose(explanation.row, relevance[0].numpy(), atol=1e-6)


def test_seed_style_model_and_get_local_compose() -> None:
    """A model decorated ``@get_local('attn')`` as in the seeds' notebooks: explain runs
    beside an active get_local, which still records its maps (without gradients)."""
    from anycapture import get_local
    from tests.models import seed_vit

    model = seed_vit.build()
    get_local.activate()
    try:
        get_local.clear()
        (explanation,) = explain(model, torch.randn(1, 3, 32, 32)).images[0]
        cached = get_local.cache["Attention.forward.attn"]
    finally:
        get_local.clear()
        get_local.deactivate()
    assert explanation.row.shape == (17,) and explanation.row[1:].max() > 0
    assert len(cached) == 3 and isinstance(cached[0], np.ndarray)
