"""Pre-processing, written once: the training side calls these same functions, so what a model
saw in training is what it sees on the device."""

from __future__ import annotations

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
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card field preprocess is not an image spec: {e}") from None


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
