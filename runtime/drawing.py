"""Text drawn on frames so a person can read it on any picture: every caption sits on a filled box,
and its letters are black or white, whichever contrasts more with the box (WCAG's contrast ratio).
Bright green letters straight on a photo of white paper were hard to read; on a box they are not."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FONT_SCALE = 0.5
DARK = (32, 32, 32)  # a caption's box where the task has no colour of its own


def luminance(bgr: Sequence[float]) -> float:
    """WCAG's relative luminance of an 8-bit BGR colour (0: black, 1: white)."""

    def linear(c: float) -> float:
        c /= 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    b, g, r = (float(v) for v in bgr[:3])
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: Sequence[float], b: Sequence[float]) -> float:
    """WCAG's contrast ratio of two colours, 1 (the same) to 21 (black on white); text wants 4.5."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink_for(fill: Sequence[float]) -> tuple[int, int, int]:
    """Black or white letters, whichever reads better on `fill`."""
    black, white = (0, 0, 0), (255, 255, 255)
    return black if contrast(fill, black) >= contrast(fill, white) else white


def colour_frame(frame: np.ndarray) -> np.ndarray:
    """A gray or BGRA frame as BGR, so a caption's colours are drawn as colours."""
    import cv2

    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def caption(
    frame: np.ndarray,
    text: str,
    origin: tuple[int, int],
    fill: Sequence[int] = DARK,
    scale: float = FONT_SCALE,
    *,
    below: bool = True,
) -> int:
    """Write `text` on a box of `fill` whose top-left corner is `origin` (`below=False`: whose
    bottom-left corner is, or, where there is no room above, whose top-left is), kept inside the
    frame; returns the box's height."""
    import cv2

    font, thick, pad = cv2.FONT_HERSHEY_SIMPLEX, 1, 3
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    h, w = frame.shape[:2]
    box_w, box_h = tw + 2 * pad, th + base + 2 * pad
    x = int(min(max(0, origin[0]), max(0, w - box_w)))
    y = int(origin[1] if below or origin[1] - box_h < 0 else origin[1] - box_h)
    y = min(max(0, y), max(0, h - box_h))
    colour = tuple(int(c) for c in fill[:3])
    cv2.rectangle(frame, (x, y), (x + box_w, y + box_h), colour, -1)
    cv2.putText(frame, text, (x + pad, y + pad + th), font, scale, ink_for(colour), thick, cv2.LINE_AA)
    return box_h
