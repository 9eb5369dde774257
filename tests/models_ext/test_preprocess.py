"""Preprocessing: the model's own when it has one, overrides, defaults with a note."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anycapture.errors import UsageError
from anycapture.preprocess import IMAGENET_MEAN, Preprocessor

from .conftest import CAT


def test_no_config_assumes_imagenet_with_a_note() -> None:
    pre = Preprocessor.for_model(torch.nn.Linear(2, 2))
    described = pre.describe()
    assert described["source"] == "ImageNet defaults (assumed)"
    assert tuple(described["mean"]) == pytest.approx(IMAGENET_MEAN)
    assert described["resize"] == "crop" and described["input_size"] == [224, 224]
    assert len(pre.notes) == 1 and "--resize" in pre.notes[0]


def test_overrides_mean_std_squash() -> None:
    pre = Preprocessor.for_model(
        torch.nn.Linear(2, 2), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), resize="squash"
    )
    assert not pre.notes  # everything given: nothing assumed
    assert pre.describe()["source"].endswith("; mean, std, resize given by the user")
    image = Image.open(CAT).convert("RGB")  # 451x300: squash keeps the whole image
    view = pre.view(image)
    assert view.size == (224, 224)
    expected = image.resize((224, 224), Image.Resampling.BICUBIC)
    assert np.abs(np.asarray(view, float) - np.asarray(expected, float)).mean() < 2.0
    x = pre.tensor([view])
    manual = (np.asarray(view, np.float32) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), manual, atol=1e-5)


def test_crop_cuts_the_sides_squash_keeps_them() -> None:
    crop = Preprocessor.for_model(torch.nn.Linear(2, 2), resize="crop")
    squash = Preprocessor.for_model(torch.nn.Linear(2, 2), resize="squash")
    for pre in (crop, squash):
        x, y = pre.locate((451, 300), (225, 150))
        assert x == pytest.approx(111.5, abs=2) and y == pytest.approx(111.5, abs=2)
    with pytest.raises(ValueError, match="outside the model's centre crop"):
        crop.locate((451, 300), (2, 150))
    x, _ = squash.locate((451, 300), (2, 150))
    assert x < 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": (0.5, 0.5)}, "--mean needs three values"),
        ({"std": (0.5, 0.0, 0.5)}, "--std values must be positive"),
        ({"resize": "stretch"}, "choose crop or squash"),
    ],
)
def test_bad_overrides_are_usage_errors(kwargs, message) -> None:
    with pytest.raises(UsageError, match=message):
        Preprocessor.for_model(torch.nn.Linear(2, 2), **kwargs)


def test_timm_model_keeps_its_pretrained_cfg_and_dtype() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64)
    model = model.to(torch.bfloat16)
    pre = Preprocessor.for_model(model)
    assert pre.describe()["source"] == "timm pretrained_cfg" and not pre.notes
    assert pre.input_hw == (64, 64)
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    assert x.dtype == torch.bfloat16 and pre.describe()["dtype"] == "bfloat16"
    with torch.inference_mode():
        model(x)  # no "Input type (float) and bias type (BFloat16)" error


def test_processor_overrides(tmp_path) -> None:
    from .hf_tiny import _processor

    processor = _processor("clip", 32)
    pre = Preprocessor.for_model(
        torch.nn.Linear(2, 2), image_processor=processor, resize="squash", mean=(0.5,) * 3
    )
    image = Image.open(CAT).convert("RGB")
    assert pre.view(image).size == (32, 32) and pre.resize == "squash"
    assert pre.describe()["mean"] == [0.5, 0.5, 0.5]
    x = pre.tensor([pre.view(image)])
    own = processor(
        images=image,
        size={"height": 32, "width": 32},
        do_center_crop=False,
        image_mean=[0.5] * 3,
        return_tensors="pt",
    )["pixel_values"]
    assert torch.equal(x, own)


def test_processor_without_mean_or_fixed_size_glpn() -> None:
    """GLPN's processor only rescales (no mean/std) and keeps any size divisible by
    32: the view is squashed to one size first, the tensor is its own pixel_values."""
    import transformers as T

    processor = T.GLPNImageProcessor(size_divisor=32)
    pre = Preprocessor.for_model(torch.nn.Linear(2, 2), (64, 96), image_processor=processor)
    assert pre.describe()["mean"] == [0.0, 0.0, 0.0] and pre.describe()["std"] == [1.0, 1.0, 1.0]
    image = Image.open(CAT).convert("RGB")
    view = pre.view(image)
    assert pre.input_hw == (64, 96) and view.size == (96, 64)  # every image: one size
    own = processor(images=image.resize((96, 64), Image.Resampling.BICUBIC), return_tensors="pt")
    assert torch.equal(pre.tensor([view]), own["pixel_values"])


def test_owlv2_processor_tensor_equals_its_own_pixel_values() -> None:
    """OWLv2's processor fails with its resize off (transformers 5): the view, already
    at size, is resized again and gives the processor's own pixel_values."""
    import transformers as T

    processor = T.Owlv2ImageProcessor(size={"height": 32, "width": 32})
    pre = Preprocessor.for_model(torch.nn.Linear(2, 2), image_processor=processor)
    image = Image.open(CAT).convert("RGB")
    own = processor(images=image, return_tensors="pt")["pixel_values"]
    assert torch.allclose(pre.tensor([pre.view(image)]), own, atol=0.02)  # uint8 view


def test_patch_sequence_processor_is_refused_in_one_line() -> None:
    import transformers as T

    processor = T.Siglip2ImageProcessor(patch_size=8, max_num_patches=16)
    with pytest.raises(UsageError, match="not images") as info:
        Preprocessor.for_model(torch.nn.Linear(2, 2), image_processor=processor)
    assert "\n" not in str(info.value)
