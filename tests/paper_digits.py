"""Photos of paper digits, as a webcam sees a digit written on paper: dark strokes (real MNIST
digits, inverted and enlarged) on a light, unevenly lit page, with sensor noise, blur and a
perspective tilt, at a camera's 320x240. `python tests/paper_digits.py OUT` writes a few as PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def paper_photo(
    digit: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = (240, 320)
) -> np.ndarray:
    """One BGR photo (uint8, `size` = (height, width)) of `digit` (28x28 light-on-dark) on paper."""
    import cv2

    h, w = size
    side = int(rng.integers(110, 170))
    ink = cv2.resize(digit.reshape(28, 28), (side, side), interpolation=cv2.INTER_CUBIC)
    ink = ink.astype(np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # paper: light, lit from one side (a gradient) with a soft shadow, slightly tinted
    light = 215 + 30 * (xx / w - 0.5) * rng.uniform(-1, 1) + 20 * (yy / h - 0.5) * rng.uniform(-1, 1)
    light -= 35 * np.exp(-(((xx - rng.uniform(0, w)) / (0.4 * w)) ** 2))
    page = np.repeat(light[..., None], 3, axis=2) * rng.uniform(0.92, 1.0, 3)
    y0, x0 = int(rng.integers(10, h - side - 10)), int(rng.integers(20, w - side - 20))
    pen = rng.uniform(20, 60)  # dark ink, not black
    region = page[y0 : y0 + side, x0 : x0 + side]
    page[y0 : y0 + side, x0 : x0 + side] = region * (1 - ink[..., None]) + pen * ink[..., None]
    # a slight perspective tilt, then the camera's blur and noise
    d = 0.06 * min(h, w)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-d, d, (4, 2)).astype(np.float32)
    tilt = cv2.getPerspectiveTransform(src, dst)
    page = cv2.warpPerspective(page, tilt, (w, h), borderMode=cv2.BORDER_REPLICATE)
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.6, 1.4))
    page += rng.normal(0, 6, page.shape)
    return np.clip(page, 0, 255).astype(np.uint8)


def paper_digits(digits: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [paper_photo(d, rng) for d in digits]


if __name__ == "__main__":
    import cv2

    from edgekit.runtime.datasets import load_dataset

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "paper-digits")
    out.mkdir(parents=True, exist_ok=True)
    held = load_dataset("mnist", "shipped").heldout
    for i, photo in enumerate(paper_digits(held.x[:10])):
        cv2.imwrite(str(out / f"paper_{i}_label{int(held.y[i])}.png"), photo)
