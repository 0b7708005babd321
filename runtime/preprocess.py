"""Pre-processing, written once: the training side calls these same functions, so what a model
saw in training is what it sees on the device."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError, ModelFileError


@dataclass(frozen=True)
class ImageSpec:
    """How raw pixels become the model's input: resize, colour, then `x * scale + offset`."""

    size: tuple[int, int]  # (height, width)
    channels: int = 3  # 1: grayscale, 3: RGB
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    # or "letterbox": keep the aspect, pad the rest with `pad`; or "crop": short side to the size, then
    # the centre cut out (Ultralytics' classify_transforms)
    resize: str = "stretch"
    pad: int = 114  # the grey level of letterbox padding (Ultralytics 114, MediaPipe 0)
    # MNIST-like data: "light-on-dark" strokes (a light background is inverted first), and
    # "centre-of-mass" crop (strokes cropped, scaled into a 20x20 box, centred by mass in the frame)
    polarity: str = ""
    crop: str = ""

    @property
    def mnist_like(self) -> bool:
        """Whether frames go through `mnist_style` (as the training data did) before the model."""
        return bool(self.polarity or self.crop)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": "image",
            "size": list(self.size),
            "channels": self.channels,
            "scale": self.scale,
            "offset": self.offset,
            "resize": self.resize,
        }
        if self.resize == "letterbox":  # stretched specs keep the card they always had
            d["pad"] = self.pad
        if self.polarity:
            d["polarity"] = self.polarity
        if self.crop:
            d["crop"] = self.crop
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        try:
            if d.get("kind") != "image":
                raise ValueError(f"kind is {d.get('kind')!r}, not 'image'")
            h, w = (int(v) for v in d["size"])
            return cls(
                size=(h, w),
                channels=int(d.get("channels", 3)),
                scale=float(d.get("scale", 1 / 255)),
                offset=float(d.get("offset", 0.0)),
                resize=str(d.get("resize", "stretch")),
                pad=int(d.get("pad", 114)),
                polarity=_one_of(d.get("polarity", ""), POLARITIES, "polarity"),
                crop=_one_of(d.get("crop", ""), CROPS, "crop"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card field preprocess is not an image spec: {e}") from None


POLARITIES = ("", "light-on-dark")
CROPS = ("", "centre-of-mass")


def _one_of(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} is {value!r}: use one of {', '.join(repr(a) for a in allowed if a)}")
    return str(value)


def mnist_style(gray: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A grayscale frame -> what MNIST's preprocessing made of a scanned digit: light strokes on a
    dark ground (a light background, paper, is inverted), the uneven light of a photo taken out,
    the strokes cropped, scaled to fit a 20x20 box (the frame 28x28: the same proportion) and
    centred by their centre of mass. A digit already in that form (MNIST's own) comes back nearly
    unchanged, so training and the device see one function."""
    g = gray.reshape(gray.shape[0], gray.shape[1])
    if g.dtype != np.uint8:
        g = g.astype(np.uint8)
    h, w = spec.size
    inverted = bool(spec.polarity) and light_ground(g)
    if inverted:
        g = 255 - g  # dark strokes on light paper -> light strokes on a dark ground
    if not spec.crop or (g.shape == (h, w) and not inverted):
        # light strokes on a dark ground at the model's size are in MNIST's form already (cropped,
        # centred): left as they are (not even copied: the task's 256-entry lookup table makes the
        # model input from them, as for any other image at its size), so the training digits pass
        # through untouched (cleaning them cost 0.7 points of held-out accuracy) and only camera
        # frames pay for the work below
        return g
    import cv2

    # the ground: an opening wider than any stroke (a third of the frame) keeps only it; worked out
    # on a copy at most 128 pixels on its short side, since a wide kernel on a full frame is slow
    shrink = min(1.0, 128 / min(g.shape))
    small_g = g if shrink == 1.0 else cv2.resize(g, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    side = max(9, (min(small_g.shape) // 3) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    ground = cv2.morphologyEx(small_g, cv2.MORPH_OPEN, kernel)
    if shrink != 1.0:
        ground = cv2.resize(ground, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)
    ink = cv2.subtract(g, ground)  # uneven light and the paper's grain taken out
    if int(ink.max()) < 16:
        return cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)  # no strokes to find
    threshold, mask = cv2.threshold(ink, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if n <= 1:
        return cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
    keep = 1 + np.flatnonzero(areas >= 0.15 * areas.max())  # the digit's strokes, not specks of noise
    ys, xs = np.nonzero(np.isin(labels, keep))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    strokes = ink[y0:y1, x0:x1].astype(np.float32)
    strokes[strokes < threshold * 0.5] = 0  # the ground between strokes: black, as in MNIST
    strokes = strokes * (255.0 / max(float(strokes.max()), 1.0))
    box = round(20 * min(h, w) / 28)
    scale = box / max(strokes.shape)
    if abs(scale - 1) < 0.1:
        scale = 1.0  # a digit already in its box (MNIST's own) is not resampled
    sh, sw = max(1, round(strokes.shape[0] * scale)), max(1, round(strokes.shape[1] * scale))
    small = (
        strokes
        if scale == 1.0
        else cv2.resize(strokes, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    )
    total = float(small.sum()) or 1.0
    cy = float((small.sum(1) * np.arange(sh)).sum()) / total
    cx = float((small.sum(0) * np.arange(sw)).sum()) / total
    # whole pixels, as MNIST shifted its digits: no resampling blur
    shift = np.float32([[1, 0, round(w / 2 - cx)], [0, 1, round(h / 2 - cy)]])
    out = cv2.warpAffine(small, shift, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=16)
def border_indices(shape: tuple[int, int]) -> np.ndarray:
    """Flat indices of a frame's border: its first and last rows, then its first and last columns
    (the corners twice, as `np.concatenate((g[0], g[-1], g[:, 0], g[:, -1]))` takes them)."""
    h, w = shape
    rows = np.concatenate((np.arange(w), (h - 1) * w + np.arange(w)))
    cols = np.concatenate((np.arange(h) * w, np.arange(h) * w + w - 1))
    return np.concatenate((rows, cols))


_DARK = bytes(range(128))  # the values of dark pixels, as bytes: deleted, what is left is light


def light_border(frame: np.ndarray) -> int:
    """How many border pixels of a uint8 H x W (or H x W x 1) frame are light (above 127), counted as
    `border_indices` takes them, on the frame's bytes: the per-frame test of an MNIST-style card.
    Right after an inference has evicted the caches numpy's calls cost several µs each; this took
    9 µs where a `take`, a compare and a `count_nonzero` took 16 (a 28x28 digit, onnxruntime)."""
    w = frame.shape[1]
    data = frame.tobytes()
    return len((data[:w] + data[-w:] + data[::w] + data[w - 1 :: w]).translate(None, _DARK))


def light_ground(g: np.ndarray) -> bool:
    """Whether the median of a 2-D uint8 frame's border pixels is above 127 (paper, not MNIST's
    black): `np.median`'s answer, from a count of the light ones (more than half light: the median
    is; fewer: it is not), sorting the border only on a tie. The border is gathered in one indexing."""
    edge = np.ascontiguousarray(g).reshape(-1)[border_indices(g.shape)]
    n, light = edge.size, int(np.count_nonzero(edge > 127))
    if 2 * light != n:
        return 2 * light > n
    ordered = np.sort(edge)  # an even border, half of it light: the mean of the middle two
    return (int(ordered[n // 2 - 1]) + int(ordered[n // 2])) / 2 > 127


def normalize(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """uint8 pixels -> float32 model input values."""
    return pixels.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)


def prepare_image(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A decoded image (H×W gray, or H×W×3 BGR as OpenCV reads it) -> uint8 H×W×C at the model's size."""
    image = fit_image(image, spec)
    if spec.channels == 3:
        import cv2

        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def fit_image(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """`prepare_image` without the BGR -> RGB step: the model's size and channel count, OpenCV's order.

    Datasets hold images this way (as a camera or a file gives them), so evaluation and training
    feed them through the same path as the device does."""
    import cv2

    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise DataError(f"expected an image, got an array of shape {image.shape}")
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if spec.channels == 1 and image.shape[2] != 1:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    if spec.mnist_like and spec.channels == 1:
        return np.ascontiguousarray(mnist_style(image, spec)[:, :, None])
    elif spec.channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    h, w = spec.size
    if spec.resize == "letterbox" and image.shape[:2] != (h, w):
        from edgekit.runtime.detection import letterbox

        image, _ = letterbox(image, (h, w), color=spec.pad)
        if image.ndim == 2:
            image = image[:, :, None]
    if spec.resize == "crop" and image.shape[:2] != (h, w):
        image = centre_crop(image, (h, w))
    if image.shape[:2] != (h, w):
        interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
        image = cv2.resize(image, (w, h), interpolation=interp)
        if image.ndim == 2:
            image = image[:, :, None]
    return np.ascontiguousarray(image)


def centre_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize so the image covers `size` (height, width) with its short side, then cut out the centre:
    torchvision's Resize(int) + CenterCrop, as Ultralytics' classify_transforms chain them."""
    import cv2

    h, w = size
    src_h, src_w = image.shape[:2]
    short = min(h, w) if h == w else None
    if short is not None:  # Resize(int): the short side to `short`, the long one truncated
        if src_h <= src_w:
            new_h, new_w = short, int(short * src_w / src_h)
        else:
            new_h, new_w = int(short * src_h / src_w), short
    else:
        new_h, new_w = h, w
    interp = cv2.INTER_AREA if new_h < src_h else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    top, left = int(round((new_h - h) / 2.0)), int(round((new_w - w) / 2.0))
    return resized[top : top + h, left : left + w]


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float values -> the integer codes an int8/uint8 input tensor expects."""
    info = np.iinfo(dtype)
    q = np.round(x / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def image_input_layout(shape: tuple, spec: ImageSpec, what: str) -> bool:
    """Check a model's image input against the card; True when it is channels first (N, C, H, W)."""
    if len(shape) != 4:
        raise DataError(f"{what} takes a (1, H, W, C) or (1, C, H, W) image, the model takes {shape}")
    c = spec.channels
    # channels first when the second axis is the channel count and the last is not
    nchw = shape[1] == c and shape[3] != c
    hw = shape[2:4] if nchw else shape[1:3]
    if all(hw) and tuple(hw) != spec.size:
        raise DataError(f"the card's image size {spec.size} does not match the model input {shape}")
    return nchw
