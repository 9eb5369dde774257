"""The model's view of an image and its input tensor, from the model's own preprocessing.

Where the settings come from, first found wins: a HuggingFace image processor
(exactly its resize, crop, rescale and normalisation), open_clip's
``preprocess_cfg``, timm's ``pretrained_cfg``; otherwise ImageNet defaults are
assumed, with a note.  ``--mean``, ``--std`` and ``--resize crop|squash``
override any of them.  The input tensor takes the model's dtype (fp16, bf16).

Each preprocessor is split in two halves: the *view* (resize and crop, what
figures are drawn on) and the *tensor* (rescale and normalise the views), so
``--query-pixel`` can follow a pixel through the view and the figures show
exactly what the model saw.  torch and timm are imported when used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .decode import precrop
from .errors import UsageError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RESIZE_MODES", "Preprocessor", "model_dtype"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("crop", "squash")


def model_dtype(model: Any) -> Any:
    """The dtype of the model's first floating-point parameter (None without any)."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return None


@dataclass
class Preprocessor:
    """Resize/crop to the view, then tensor + normalise, in the model's dtype.

    ``source`` says where the settings came from; ``notes`` are one-line remarks
    for the user (e.g. ImageNet defaults assumed); ``describe()`` is what the
    manifest records.
    """

    view_transforms: list[Any]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_hw: tuple[int, int]
    dtype: Any = None  # torch dtype of the input tensor; None: float32
    source: str = "timm pretrained_cfg"
    resize: str = "crop"
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def for_model(
        cls,
        model: Any,
        img_size: tuple[int, int] | None = None,
        *,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        resize: str | None = None,
        image_processor: Any = None,
    ) -> Preprocessor:
        """The model's own preprocessing, with ``mean``/``std``/``resize`` overriding it."""
        for name, value in (("--mean", mean), ("--std", std)):
            if value is not None and len(value) != 3:
                raise UsageError(f"{name} needs three values R,G,B, e.g. 0.5,0.5,0.5")
        if std is not None and min(std) <= 0:
            raise UsageError("--std values must be positive, e.g. 0.229,0.224,0.225")
        if resize is not None and resize not in RESIZE_MODES:
            raise UsageError(f"--resize {resize!r}: choose crop or squash")
        processor = image_processor or _own_image_processor(model)
        if processor is not None:
            made: Preprocessor = ProcessorPreprocessor.create(
                processor, img_size, mean=mean, std=std, resize=resize
            )
        elif isinstance(getattr(model, "preprocess_cfg", None), dict):
            made = _open_clip(model.preprocess_cfg, img_size, mean, std, resize)
        else:
            made = _timm(model, img_size, mean, std, resize)
        made.dtype = model_dtype(model)
        overridden = [n for n, v in (("mean", mean), ("std", std), ("resize", resize)) if v]
        if overridden:  # the manifest says what was not the model's own
            made.source = f"{made.source}; {', '.join(overridden)} given by the user"
        return made

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the preprocessing used."""
        import torch

        dtype = self.dtype or torch.float32
        return {
            "source": self.source,
            "input_size": list(self.input_hw),
            "resize": self.resize,
            "mean": [round(float(v), 6) for v in self.mean],
            "std": [round(float(v), 6) for v in self.std],
            "dtype": str(dtype).removeprefix("torch."),
            **self.details,
        }

    def view(self, image: Image.Image) -> Image.Image:
        image = precrop(image, self.view_transforms)  # a 1x4096 strip: crop, then resize
        for step in self.view_transforms:
            image = step(image)
        if (image.height, image.width) != self.input_hw:  # transforms that do not crop
            image = image.resize((self.input_hw[1], self.input_hw[0]), Image.Resampling.BICUBIC)
        return image

    def locate(self, size: tuple[int, int], pixel: tuple[int, int]) -> tuple[float, float]:
        """Where pixel (x, y) of an original image of ``size`` (w, h) lands in the view.

        Runs a marker through the same resize/crop, so any transform is followed.
        """
        width, height = size
        x, y = pixel
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(
                f"--query-pixel {x},{y} is outside the {width}x{height} image "
                f"(X in 0..{width - 1}, Y in 0..{height - 1})"
            )
        radius = max(1, round(max(width, height) / 200))
        marker = Image.new("RGB", size)
        marker.paste((255, 255, 255), (x - radius, y - radius, x + radius + 1, y + radius + 1))
        seen = np.asarray(self.view(marker).convert("L"), dtype=np.float64)
        if seen.max() <= 0:
            raise ValueError(
                f"--query-pixel {x},{y} falls outside the model's centre crop of this image"
            )
        ys, xs = np.nonzero(seen >= seen.max() / 2)
        return float(xs.mean()), float(ys.mean())

    def tensor(self, views: list[Image.Image]) -> Any:
        import torch

        batch = np.stack([np.asarray(v, dtype=np.float32) / 255.0 for v in views])
        batch = (batch - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
        return tensor if self.dtype is None else tensor.to(self.dtype)


def _own_image_processor(model: Any) -> Any:
    """A HuggingFace model's image processor, found next to its weights."""
    config = getattr(model, "config", None)
    path = getattr(config, "_name_or_path", "") if config is not None else ""
    if not path or not (Path(path) / "preprocessor_config.json").is_file():
        return None
    from .hf import load_image_processor

    return load_image_processor(path)


def _split_at_to_tensor(transform: Any) -> list[Any]:
    steps = []
    for step in getattr(transform, "transforms", [transform]):
        if "ToTensor" in type(step).__name__ or "ToImage" in type(step).__name__:
            break
        steps.append(step)
    return steps


def _timm(
    model: Any,
    img_size: tuple[int, int] | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    resize: str | None,
) -> Preprocessor:
    from timm.data import create_transform, resolve_data_config

    if img_size is None:  # a model built for another size says so in its patch embed
        built = getattr(getattr(model, "patch_embed", None), "img_size", None)
        img_size = tuple(built) if isinstance(built, (tuple, list)) and len(built) == 2 else None
    own = bool(getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None))
    args: dict[str, Any] = {"input_size": (3, *img_size)} if img_size else {}
    config = resolve_data_config(args, model=model)
    if mean is not None:
        config["mean"] = tuple(mean)
    if std is not None:
        config["std"] = tuple(std)
    if resize == "squash":
        config["crop_pct"], config["crop_mode"] = 1.0, "squash"
    elif resize == "crop":
        config["crop_mode"] = "center"
    transform = create_transform(**config, is_training=False)
    _, height, width = config["input_size"]
    notes = []
    if not own and (mean is None or std is None or resize is None):
        notes.append(
            f"{type(model).__name__} carries no preprocessing config: assuming ImageNet "
            f"mean/std and a {config.get('crop_pct', 0.875):g} centre crop to {height}x{width}; "
            "set --mean R,G,B --std R,G,B --resize crop|squash if it was trained otherwise"
        )
    return Preprocessor(
        _split_at_to_tensor(transform),
        tuple(config["mean"]),
        tuple(config["std"]),
        (height, width),
        source="timm pretrained_cfg" if own else "ImageNet defaults (assumed)",
        resize="squash" if config.get("crop_mode") == "squash" else "crop",
        details={
            "crop_pct": config.get("crop_pct"),
            "interpolation": config.get("interpolation"),
        },
        notes=notes,
    )


def _open_clip(
    cfg: dict[str, Any],
    img_size: tuple[int, int] | None,
    mean: tuple[float, ...] | None,
    std: tuple[float, ...] | None,
    resize: str | None,
) -> Preprocessor:
    """open_clip's ``preprocess_cfg`` (``visual.preprocess_cfg``) through open_clip's own
    ``image_transform``."""
    from open_clip.transform import image_transform

    size = img_size or cfg.get("size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    mode = {"crop": "shortest", "squash": "squash"}.get(resize or "", cfg.get("resize_mode"))
    transform = image_transform(
        size,
        is_train=False,
        mean=mean or cfg.get("mean"),
        std=std or cfg.get("std"),
        resize_mode=mode or "shortest",
        interpolation=cfg.get("interpolation", "bicubic"),
        fill_color=cfg.get("fill_color", 0),
    )
    steps = [s for s in _split_at_to_tensor(transform) if callable(s)]
    return Preprocessor(
        steps,
        tuple(mean or cfg["mean"]),
        tuple(std or cfg["std"]),
        (int(size[0]), int(size[1])),
        source="open_clip preprocess_cfg",
        resize="squash" if mode == "squash" else "crop",
        details={"interpolation": cfg.get("interpolation"), "resize_mode": mode},
    )


@dataclass
class ProcessorPreprocessor(Preprocessor):
    """A HuggingFace image processor, split in its two halves: the view is its
    resize and crop (rescale and normalise off), the tensor its rescale and
    normalise of the view (resize and crop off), which together give exactly
    the ``pixel_values`` it makes from the original image."""

    processor: Any = None
    view_options: dict[str, Any] = field(default_factory=dict)
    tensor_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        processor: Any,
        img_size: tuple[int, int] | None,
        *,
        mean: tuple[float, ...] | None,
        std: tuple[float, ...] | None,
        resize: str | None,
    ) -> ProcessorPreprocessor:
        has_crop = bool(getattr(processor, "do_center_crop", False))
        view_options: dict[str, Any] = {"do_rescale": False, "do_normalize": False}
        tensor_options: dict[str, Any] = {"do_resize": False}
        if hasattr(processor, "do_center_crop"):
            tensor_options["do_center_crop"] = False
        if img_size is not None or resize == "squash":
            height, width = img_size or _processor_size(processor)
            view_options["size"] = {"height": height, "width": width}
            if has_crop:
                view_options["do_center_crop"] = False
        if mean is not None:
            tensor_options["image_mean"] = list(mean)
        if std is not None:
            tensor_options["image_std"] = list(std)
        normalized = getattr(processor, "do_normalize", True)  # GLPN only rescales
        own_mean = getattr(processor, "image_mean", None) if normalized else None
        own_std = getattr(processor, "image_std", None) if normalized else None
        made = cls(
            [],
            tuple(mean or own_mean or (0.0, 0.0, 0.0)),
            tuple(std or own_std or (1.0, 1.0, 1.0)),
            (0, 0),
            source=f"image processor ({type(processor).__name__})",
            resize="crop" if has_crop and "size" not in view_options else "squash",
            processor=processor,
            view_options=view_options,
            tensor_options=tensor_options,
        )
        probe = Image.new("RGB", (320, 240), (128, 128, 128))
        if not _fixed_size(processor):  # GLPN: any size divisible by 32; the run needs one
            made.squash_to = img_size or made.view(probe).size[::-1]
        made.input_hw = made.view(probe).size[::-1]
        made.check_tensor(made.view(probe))
        made.details = {
            "size": _plain(view_options.get("size", getattr(processor, "size", None))),
            "crop_size": _plain(getattr(processor, "crop_size", None)) if has_crop else None,
            "resample": str(getattr(processor, "resample", "")),
        }
        return made

    squash_to: tuple[int, int] | None = None  # (h, w) every image is resized to first

    def view(self, image: Image.Image) -> Image.Image:
        if self.squash_to is not None:
            image = image.resize(self.squash_to[::-1], Image.Resampling.BICUBIC)
        pixels = self.processor(images=image, return_tensors="pt", **self.view_options)
        array = pixels["pixel_values"][0].float().numpy()
        if array.ndim != 3:  # VideoMAE's clips, SigLIP2's patch sequences
            raise UsageError(
                f"{type(self.processor).__name__} makes pixel_values of shape "
                f"{tuple(pixels['pixel_values'].shape)}, not images (channels, height, "
                "width): this model takes video clips or patch sequences, which anycapture "
                "does not render; use an image model"
            )
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        return Image.fromarray(array)

    def tensor(self, views: list[Image.Image]) -> Any:
        pixels = self.processor(images=views, return_tensors="pt", **self.tensor_options)
        tensor = pixels["pixel_values"]
        return tensor if self.dtype is None else tensor.to(self.dtype)

    def check_tensor(self, view: Image.Image) -> None:
        """Some processors fail with their resize off (OWLv2's, transformers 5): they
        then resize the view again, to the size it already has."""
        try:
            self.tensor([view])
        except (KeyError, IndexError, ValueError, TypeError):
            self.tensor_options.pop("do_resize", None)
            self.tensor([view])


def _fixed_size(processor: Any) -> bool:
    """Whether the processor resizes every image to one size (else GLPN's multiples)."""
    for size in (getattr(processor, "crop_size", None), getattr(processor, "size", None)):
        if isinstance(size, int) or (size is not None and _plain(size)):
            return True
    return False


def _processor_size(processor: Any) -> tuple[int, int]:
    """The processor's output size: its crop size, else its resize target."""
    for size in (getattr(processor, "crop_size", None), getattr(processor, "size", None)):
        size = _plain(size)
        if isinstance(size, dict) and "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if isinstance(size, dict) and "shortest_edge" in size:
            edge = int(size["shortest_edge"])
            return edge, edge
    return 224, 224


def _plain(value: Any) -> Any:
    """A processor's size object (a dict or SizeDict) as a plain dict of set values."""
    if value is None:
        return None
    items = value.items() if hasattr(value, "items") else vars(value).items()
    return {k: v for k, v in items if v is not None}
