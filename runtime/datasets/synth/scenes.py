"""Generated scenes for the `detector` and `unet` recipes: real MNIST digits and simple shapes
pasted on procedural textures, with YOLO boxes and a binary foreground mask per image.

`edgekit data make scenes --out DIR` writes the YOLO layout both recipes' `--data` read:

    DIR/classes.txt, DIR/data.yaml
    DIR/train/images/*.png  DIR/train/labels/*.txt  DIR/train/masks/*.png
    DIR/test/images/*.png   DIR/test/labels/*.txt   DIR/test/masks/*.png

A label line is `class cx cy w h`, normalised to the image; a mask is 255 on every object pixel.
Test scenes paste only the shipped digits' held-out split, so no test digit was seen in training.
Every image is a function of (seed, split, index): the same seed makes the same files. numpy and
OpenCV only."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import ConfigError
from edgekit.runtime.datasets.synth import GENERATORS, Generator

SHAPES = ("circle", "square", "triangle")
DEFAULT_COUNT = 6000  # train + test: many scenes seen few times generalise better than few seen often
TEST_FRACTION = 1 / 6
SPLITS = ("train", "test")


@dataclass(frozen=True)
class SceneSpec:
    """What a scene holds. `objects`: "shapes", "digits" or "mixed"; `digit_classes`: each digit
    its own class ("0".."9") rather than one "digit" class."""

    size: tuple[int, int] = (160, 160)  # (height, width)
    objects: str = "mixed"
    digit_classes: bool = False
    min_objects: int = 1
    max_objects: int = 4
    min_scale: float = 0.15  # an object's longer side, as a fraction of the image's shorter side
    max_scale: float = 0.4
    max_iou: float = 0.2  # overlap allowed between two objects' boxes (never total occlusion)

    def __post_init__(self) -> None:
        if self.objects not in ("shapes", "digits", "mixed"):
            raise ConfigError(f"scene objects must be shapes, digits or mixed, not {self.objects!r}")
        if min(self.size) < 32:
            raise ConfigError(f"scenes must be at least 32x32 pixels, not {self.size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ConfigError("scenes need 1 <= min_objects <= max_objects")
        if not 0 < self.min_scale <= self.max_scale <= 0.9:
            raise ConfigError("scenes need 0 < min_scale <= max_scale <= 0.9")

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in label order: the shapes, then the digit class(es)."""
        shapes = SHAPES if self.objects != "digits" else ()
        digits = (
            () if self.objects == "shapes" else (tuple("0123456789") if self.digit_classes else ("digit",))
        )
        return shapes + digits


@dataclass(frozen=True)
class Scenes:
    """Rendered scenes: BGR images (N, H, W, 3), boxes per image (object array of (k, 5) float32
    [class, cx, cy, w, h] normalised), foreground masks (N, H, W) uint8 0/255."""

    images: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    classes: tuple[str, ...]


@functools.cache
def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The shipped real MNIST digits of one split (train digits for train scenes, held-out for test)."""
    from edgekit.runtime.datasets import load_dataset

    ds = load_dataset("mnist", "shipped")
    part = ds.train if split == "train" else ds.heldout
    return part.x[..., 0], part.y


# ---- backgrounds -------------------------------------------------------------------------------


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    cell = int(rng.choice([4, 8, 16, 32]))
    small = rng.random((max(2, h // cell), max(2, w // cell), 3)).astype(np.float32)
    t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    a, b = _colour(rng), _colour(rng)
    return a + (b - a) * t


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[:h, :w].astype(np.float32)
    t = x * np.cos(theta) + y * np.sin(theta)
    t = ((t - t.min()) / max(1e-6, np.ptp(t)))[..., None]
    a, b = _colour(rng), _colour(rng)
    return a + (b - a) * t


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(6, 30)
    y, x = np.mgrid[:h, :w].astype(np.float32)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period)
    a, b = _colour(rng), _colour(rng)
    return a + (b - a) * t[..., None]


def _blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    image = np.empty((h, w, 3), np.float32)
    image[:] = _colour(rng)
    for _ in range(int(rng.integers(4, 12))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = int(rng.integers(min(h, w) // 12, min(h, w) // 3))
        cv2.circle(image, centre, radius, _colour(rng).tolist(), -1)
    sigma = min(h, w) / rng.uniform(8, 20)
    return cv2.GaussianBlur(image, (0, 0), sigma)


TEXTURES = (_noise, _gradient, _stripes, _blobs)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A procedural texture (noise, gradient, stripes or blurred blobs, sometimes two blended) as float32 BGR."""
    image = TEXTURES[int(rng.integers(len(TEXTURES)))](rng, h, w)
    if rng.random() < 0.5:
        other = TEXTURES[int(rng.integers(len(TEXTURES)))](rng, h, w)
        image = 0.5 * (image + other)
    return image


# ---- objects -----------------------------------------------------------------------------------


def _shape_alpha(rng: np.random.Generator, kind: str, h: int, w: int, cx: float, cy: float, side: float):
    """A filled shape of about `side` pixels across, centred at (cx, cy), as an alpha map in [0, 1]."""
    import cv2

    canvas = np.zeros((h, w), np.uint8)
    scale = 16  # 4 fractional bits: sub-pixel placement, anti-aliased edges
    if kind == "circle":
        centre = (round(cx * scale), round(cy * scale))
        cv2.circle(canvas, centre, round(side / 2 * scale), 255, -1, cv2.LINE_AA, shift=4)
    else:
        corners = 4 if kind == "square" else 3
        # a square of side `side` has circumradius side/sqrt(2); a triangle's vertices sit on side/2*1.15
        radius = side / np.sqrt(2) if corners == 4 else side / 2 * 1.15
        start = rng.uniform(0, 2 * np.pi)
        angles = start + np.arange(corners) * 2 * np.pi / corners
        pts = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts * scale).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255


def _digit_alpha(digit: np.ndarray, h: int, w: int, cx: float, cy: float, side: float) -> np.ndarray:
    """An MNIST digit's ink, cropped to its strokes and scaled to `side` pixels tall, as an alpha map."""
    import cv2

    rows, cols = np.flatnonzero(digit.max(1) > 0), np.flatnonzero(digit.max(0) > 0)
    ink = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255
    dh = max(2, round(side))
    dw = max(2, round(side * ink.shape[1] / ink.shape[0]))
    ink = cv2.resize(ink, (dw, dh), interpolation=cv2.INTER_LINEAR).clip(0, 1)
    alpha = np.zeros((h, w), np.float32)
    y0, x0 = round(cy - dh / 2), round(cx - dw / 2)
    ys, xs = slice(max(0, y0), min(h, y0 + dh)), slice(max(0, x0), min(w, x0 + dw))
    alpha[ys, xs] = ink[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return alpha


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2), exclusive of x2/y2, of a boolean mask's pixels; None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _contrasting(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background under the object (by luminance)."""
    lum = np.array([0.114, 0.587, 0.299], np.float32)  # BGR
    ground = float(under.reshape(-1, 3).mean(0) @ lum)
    for _ in range(20):
        c = _colour(rng)
        if abs(float(c @ lum) - ground) >= 60:
            return c
    return np.full(3, 0.0 if ground > 127 else 255.0, np.float32)


def render_scene(
    rng: np.random.Generator, spec: SceneSpec, digits: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: (BGR uint8 image, (k, 5) float32 [class, cx, cy, w, h] normalised, uint8 0/255 mask)."""
    h, w = spec.size
    image = background(rng, h, w)
    n_shapes = 0 if spec.objects == "digits" else len(SHAPES)
    kinds = (["shape"] if spec.objects != "digits" else []) + (["digit"] if spec.objects != "shapes" else [])
    wanted = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[int] = []
    alphas: list[np.ndarray] = []
    for _ in range(wanted * 10):  # retries for placements that overlap too much
        if len(boxes) == wanted:
            break
        side = rng.uniform(spec.min_scale, spec.max_scale) * min(h, w)
        cx, cy = rng.uniform(side / 2 + 1, w - side / 2 - 1), rng.uniform(side / 2 + 1, h - side / 2 - 1)
        if kinds[int(rng.integers(len(kinds)))] == "shape":
            cls = int(rng.integers(len(SHAPES)))
            alpha = _shape_alpha(rng, SHAPES[cls], h, w, cx, cy, side)
        else:
            pool, pool_y = digits
            pick = int(rng.integers(len(pool)))
            cls = n_shapes + (int(pool_y[pick]) if spec.digit_classes else 0)
            alpha = _digit_alpha(pool[pick], h, w, cx, cy, side)
        box = _tight_box(alpha >= 0.5)
        if box is None or (box[2] - box[0]) < 4 or (box[3] - box[1]) < 4:
            continue
        if any(_iou(box, b) > spec.max_iou for b in boxes):
            continue
        solid = alpha >= 0.5
        # a small object inside a big one's box passes the IoU test: also keep most of each earlier
        # object's pixels visible, so none is hidden
        if any((solid & (a >= 0.5)).sum() > 0.3 * (a >= 0.5).sum() for a in alphas):
            continue
        # blend only where the alpha reaches (its faint anti-aliased edge lies outside the box)
        x1, y1, x2, y2 = _tight_box(alpha > 0)
        region = (slice(y1, y2), slice(x1, x2))
        colour = _contrasting(rng, image[region])
        a = alpha[region][..., None]
        image[region] = image[region] * (1 - a) + colour * a
        boxes.append(box)
        labels.append(cls)
        alphas.append(alpha)
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, 6)  # sensor noise
    pixels = np.clip(np.round(image), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    for alpha in alphas:
        mask[alpha >= 0.5] = 255
    rows = [
        [c, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
        for c, (x1, y1, x2, y2) in zip(labels, boxes, strict=True)
    ]
    return pixels, np.asarray(rows, np.float32).reshape(-1, 5), mask


def render_scenes(count: int, seed: int = 0, split: str = "train", spec: SceneSpec | None = None) -> Scenes:
    """`count` scenes of one split; scene i depends only on (seed, split, i), never on `count`."""
    spec = spec or SceneSpec()
    if split not in SPLITS:
        raise ConfigError(f"scene split must be train or test, not {split!r}")
    digits = _digits(split) if spec.objects != "shapes" else (np.zeros((0, 28, 28), np.uint8), np.zeros(0))
    images, boxes, masks = [], np.empty(count, dtype=object), []
    for i in range(count):
        rng = np.random.default_rng([seed, SPLITS.index(split), i])
        image, rows, mask = render_scene(rng, spec, digits)
        images.append(image)
        boxes[i] = rows
        masks.append(mask)
    h, w = spec.size
    return Scenes(
        np.stack(images) if images else np.zeros((0, h, w, 3), np.uint8),
        boxes,
        np.stack(masks) if masks else np.zeros((0, h, w), np.uint8),
        spec.classes,
    )


def split_counts(count: int) -> tuple[int, int]:
    """(train, test) scenes for a total of `count`: a sixth held out, at least one of each."""
    if count < 2:
        raise ConfigError("scenes need --count 2 or more (one training and one test scene at least)")
    test = max(1, round(count * TEST_FRACTION))
    return count - test, test


def label_text(rows: np.ndarray) -> str:
    """YOLO label lines for one image: `class cx cy w h`, normalised, six decimals."""
    return "".join(f"{int(r[0])} {r[1]:.6f} {r[2]:.6f} {r[3]:.6f} {r[4]:.6f}\n" for r in rows)


def write_scenes(folder: Path, count: int | None = None, seed: int = 0, spec: SceneSpec | None = None) -> str:
    """Render scenes into `folder` in the YOLO layout (with masks); returns a one-line summary."""
    import cv2

    spec = spec or SceneSpec()
    folder = Path(folder)
    counts = split_counts(DEFAULT_COUNT if count is None else count)
    objects = 0
    for split, n in zip(SPLITS, counts, strict=True):
        scenes = render_scenes(n, seed, split, spec)
        for sub in ("images", "labels", "masks"):
            (folder / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            stem = f"{split}_{i:05d}"
            cv2.imwrite(str(folder / split / "images" / f"{stem}.png"), scenes.images[i])
            cv2.imwrite(str(folder / split / "masks" / f"{stem}.png"), scenes.masks[i])
            (folder / split / "labels" / f"{stem}.txt").write_text(label_text(scenes.boxes[i]))
            objects += len(scenes.boxes[i])
    (folder / "classes.txt").write_text("".join(f"{c}\n" for c in spec.classes))
    names = ", ".join(spec.classes)
    (folder / "data.yaml").write_text(
        f"# made by `edgekit data make scenes --seed {seed}`\n"
        f"path: .\ntrain: train/images\nval: test/images\nnc: {len(spec.classes)}\nnames: [{names}]\n"
    )
    h, w = spec.size
    return (
        f"{counts[0]} training and {counts[1]} test scenes ({w}x{h}, {objects} objects of "
        f"{len(spec.classes)} classes: {names}) with YOLO labels and masks"
    )


GENERATORS.add(
    Generator(
        name="scenes",
        description="MNIST digits and shapes pasted on procedural textures, YOLO boxes and masks",
        make=lambda folder, count, seed: write_scenes(folder, count, seed),
        recipes=("detector", "unet"),
    ),
)
