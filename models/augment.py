"""Training-time augmentation on uint8 pixels (numpy; never part of the exported model)."""

from __future__ import annotations

import numpy as np


def random_shift(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each image moved by up to `max_shift` pixels in each direction, zero-filled (N, H, W, C)."""
    n, h, w, _ = x.shape
    m = max_shift
    padded = np.pad(x, ((0, 0), (m, m), (m, m), (0, 0)))
    dy, dx = rng.integers(0, 2 * m + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None, :]  # (N, H)
    cols = dx[:, None] + np.arange(w)[None, :]  # (N, W)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def random_flip_rotate_zoom(
    x: np.ndarray, rng: np.random.Generator, max_degrees: float = 20.0, max_zoom: float = 0.2
) -> np.ndarray:
    """Each image (N, H, W, C) flipped left-right at random, rotated by up to `max_degrees` and zoomed
    in or out by up to `max_zoom`, edges filled by reflection (the cats-vs-dogs tutorial's set)."""
    import cv2

    n, h, w, c = x.shape
    out = np.empty_like(x)
    flips = rng.random(n) < 0.5
    angles = rng.uniform(-max_degrees, max_degrees, n)
    zooms = rng.uniform(1 - max_zoom, 1 + max_zoom, n)
    for i in range(n):
        image = x[i, :, ::-1] if flips[i] else x[i]  # mirror the columns
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(angles[i]), float(zooms[i]))
        moved = cv2.warpAffine(np.ascontiguousarray(image), m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        out[i] = moved.reshape(h, w, c)
    return out
