"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright's Python package;
the tests skip, saying why, where either is missing.  Never downloads a browser."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is missing (pip install anycapture[test])"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@dataclass
class Opened:
    """A page opened from a file, with what it asked for and what it complained about."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def elsewhere(self) -> list[str]:
        return [url for url in self.requests if url != self.url]

    def value(self, selector: str) -> float:
        return float(self.page.get_attribute(selector, "data-value"))

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def heat(self) -> np.ndarray:
        """The overlay canvas's RGBA pixels, (H, W, 4) uint8."""
        shape, data = self.page.evaluate(
            """() => { const c = document.getElementById('ac-heat');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let s = ''; for (let i = 0; i < d.length; i += 8192)
              s += String.fromCharCode(...d.subarray(i, i + 8192));
            return [[c.height, c.width], btoa(s)]; }"""
        )
        pixels = np.frombuffer(base64.b64decode(data), dtype=np.uint8)
        return pixels.reshape(shape[0], shape[1], 4)

    def click_cell(self, cell: tuple[int, int], grid: tuple[int, int]) -> None:
        box = self.page.locator("#ac-stage").bounding_box()
        x = box["x"] + (cell[1] + 0.5) * box["width"] / grid[1]
        y = box["y"] + (cell[0] + 0.5) * box["height"] / grid[0]
        self.page.mouse.click(x, y)


def open_page(browser: Any, path: Path, viewport: tuple[int, int] = (1100, 760)) -> Opened:
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    opened = Opened(page, path.resolve().as_uri())
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on(
        "console",
        lambda m: opened.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    # anything but the page itself is refused (and recorded above)
    page.route("**/*", lambda r: r.continue_() if r.request.url == opened.url else r.abort())
    page.goto(opened.url)
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    return opened


def lut_index(pixels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Each opaque pixel's colormap index (the first entry of that colour); -1 where
    the colour is not in the table."""
    table = {tuple(int(v) for v in colour): i for i, colour in reversed(list(enumerate(lut)))}
    flat = pixels[..., :3].reshape(-1, 3)
    found = np.array([table.get(tuple(int(v) for v in p), -1) for p in flat])
    return found.reshape(pixels.shape[:2])
