"""The figure PNG writer: any reader (Pillow here) decodes exactly the pixels given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from anycapture.render.png import write_png

Image = pytest.importorskip("PIL.Image")


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))
        | st.tuples(st.integers(1, 40), st.integers(1, 40)),
    )
)
def test_round_trip_is_exact(pixels: np.ndarray) -> None:
    assert np.array_equal(_decode(write_png(pixels)), pixels)


@pytest.mark.parametrize("deflate", ["isal", "zlib"])
def test_figure_content_round_trips_at_a_size_near_pillows(deflate, monkeypatch) -> None:
    """With isal (the default) and with the standard library's zlib (where isal has
    no wheel) alike."""
    import zlib
    from pathlib import Path

    from anycapture.render import png
    from anycapture.render.colour import colourise

    if deflate == "zlib":
        monkeypatch.setattr(png, "_deflate", zlib)
    else:
        assert png._deflate.__name__ == "isal.isal_zlib"  # installed with anycapture

    with Image.open(Path(__file__).parents[1] / "assets" / "cat.jpg") as cat:
        photo = np.asarray(cat.convert("RGB").resize((300, 200)))
    y, x = np.mgrid[0:200, 0:300]
    heat = colourise(np.sin(x / 40.0) * np.cos(y / 30.0), "viridis", -1.0, 1.0)
    smooth = np.concatenate([photo, heat], axis=1)  # what figures hold: photos and maps
    data = write_png(smooth)
    assert np.array_equal(_decode(data), smooth)
    buffer = io.BytesIO()
    Image.fromarray(smooth).save(buffer, format="PNG")
    assert len(data) < 1.5 * len(buffer.getvalue())


def test_other_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8 pixels"):
        write_png(np.zeros((4, 4, 4), np.uint8))
