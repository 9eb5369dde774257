"""Finding and reading input images, and the model's view of them.

Every Pillow mode becomes RGB (grayscale, RGBA over white, palette, 16-bit,
CMYK); very large JPEGs are decoded at reduced size so memory stays bounded.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UsageError

__all__ = ["IMAGE_SUFFIXES", "ImageInputError", "collect_images", "read_image", "safe_stem"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
MAX_SIDE = 4096  # decode larger images reduced: the model sees a few hundred pixels anyway


class ImageInputError(UsageError):
    """An --image argument names nothing usable; the message says what to do."""


def collect_images(specs: list[str]) -> list[Path]:
    """Files, directories (their images, sorted) and globs, in the order given."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise ImageInputError(f"--image {spec}: the pattern matches no image files")
            found += images
        elif path.is_dir():
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not images:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ImageInputError(f"--image {spec}: the directory has no images ({suffixes})")
            found += images
        elif path.is_file():
            found.append(path)
        else:
            raise ImageInputError(f"--image {spec}: no such file or directory")
    return list(dict.fromkeys(found))


def read_image(path: Path) -> Image.Image:
    """Open any Pillow-readable image as RGB, reduced if larger than ``MAX_SIDE``."""
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4, 1/8 size
            image.load()
            rgb = _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageInputError(f"{path} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{path} is truncated or corrupt ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"{path} is too large to decode safely ({exc})") from None
    if max(rgb.size) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return rgb


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth: rescale to 8-bit
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def safe_stem(path: Path, taken: set[str]) -> str:
    """A file-name-safe, unique stem for outputs (never a path: nothing escapes --out)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._") or "image"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate


@dataclass
class Preprocessor:
    """The model's own preprocessing (timm data config), split in two halves:
    resize/crop to the *view* (what figures draw on), then tensor + normalise."""

    view_transforms: list[Any]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_hw: tuple[int, int]

    @classmethod
    def for_model(cls, model: Any, img_size: tuple[int, int] | None = None) -> Preprocessor:
        from timm.data import create_transform, resolve_data_config

        if img_size is None:  # a model built for another size says so in its patch embed
            built = getattr(getattr(model, "patch_embed", None), "img_size", None)
            img_size = (
                tuple(built) if isinstance(built, (tuple, list)) and len(built) == 2 else None
            )
        args = {"input_size": (3, *img_size)} if img_size else {}
        config = resolve_data_config(args, model=model)
        transform = create_transform(**config, is_training=False)
        view_transforms = []
        for step in getattr(transform, "transforms", [transform]):
            if "ToTensor" in type(step).__name__:
                break
            view_transforms.append(step)
        _, height, width = config["input_size"]
        return cls(view_transforms, tuple(config["mean"]), tuple(config["std"]), (height, width))

    def view(self, image: Image.Image) -> Image.Image:
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
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
