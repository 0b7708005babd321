"""Darknet model files in plain Python: the `.cfg` network description, the `.weights` layout, and the
YOLO heads and card that OpenCV DNN and an imported (Keras, TFLite, ONNX) model both run with.

Shapes follow Darknet's own rules (and OpenCV's importer, which copies them): a convolution with
`pad=1` pads `size // 2` on every side; a maxpool pads `padding` (default `size - 1`) split as
`padding // 2` before and the rest after; a route concatenates channels, or takes group
`group_id` of `groups` equal slices of one layer's channels.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.card import ModelCard, TensorSpec
from edgekit.errors import ModelFileError, UnsupportedError
from edgekit.runtime.darknet_suffixes import CFG_SUFFIX, WEIGHTS_SUFFIX
from edgekit.runtime.preprocess import ImageSpec

ACTIVATIONS = ("linear", "leaky", "relu", "logistic", "mish", "swish")
# layers whose output shape we can follow; the Keras importer builds a subset of them
LAYER_KINDS = ("convolutional", "maxpool", "route", "upsample", "shortcut", "yolo", "dropout")
DEFAULT_CONF, DEFAULT_IOU = 0.5, 0.4  # the course's thresholds for cv2.dnn.NMSBoxes


@dataclass(frozen=True)
class Section:
    """One `[kind]` block of a cfg with its `key=value` options, and where it starts."""

    kind: str
    options: dict[str, str]
    line: int
    index: int  # the layer index routes refer to (-1 for [net])
    file: str = "model.cfg"  # the cfg's name, for errors

    def where(self) -> str:
        """`yolov4-tiny.cfg: [route] at line 40`, to start an error message with."""
        return f"{self.file}: [{self.kind}] at line {self.line}"

    def integer(self, key: str, default: int | None = None) -> int:
        """An integer option; a missing one without a default is an error naming the section."""
        return int(self._number(key, default, int))

    def real(self, key: str, default: float | None = None) -> float:
        """A float option; a missing one without a default is an error naming the section."""
        return float(self._number(key, default, float))

    def integers(self, key: str) -> list[int]:
        """A comma-separated list of integers (`layers=-1,8`, `mask=3,4,5`)."""
        return [int(v) for v in self._numbers(key, int)]

    def reals(self, key: str) -> list[float]:
        """A comma-separated list of numbers (`anchors=10,14, 23,27`)."""
        return [float(v) for v in self._numbers(key, float)]

    def text(self, key: str, default: str) -> str:
        """A string option, or `default`."""
        return self.options.get(key, default)

    def _number(self, key: str, default: Any, kind: type) -> Any:
        if key not in self.options:
            if default is None:
                raise ModelFileError(f"{self.where()} has no {key}=")
            return default
        try:
            return kind(self.options[key])
        except ValueError:
            raise ModelFileError(f"{self.where()} has {key}={self.options[key]}, not a number") from None

    def _numbers(self, key: str, kind: type) -> list[Any]:
        if key not in self.options:
            raise ModelFileError(f"{self.where()} has no {key}=")
        try:
            return [kind(v) for v in self.options[key].split(",") if v.strip()]
        except ValueError:
            raise ModelFileError(
                f"{self.where()} has {key}={self.options[key]}, not a list of numbers"
            ) from None


@dataclass(frozen=True)
class YoloHead:
    """One `[yolo]` layer: its grid, the anchors (input pixels) its mask picks, and its decoding."""

    layer: int  # index of the [yolo] section
    grid: tuple[int, int]  # (rows, cols)
    anchors: tuple[tuple[float, float], ...]  # (w, h) per anchor of this head
    classes: int
    scale_x_y: float = 1.0
    thresh: float = 0.2  # OpenCV zeroes class scores at or below this (its [yolo] default)

    @property
    def channels(self) -> int:
        return len(self.anchors) * (5 + self.classes)

    @property
    def rows(self) -> int:
        return self.grid[0] * self.grid[1] * len(self.anchors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": list(self.grid),
            "anchors": [list(a) for a in self.anchors],
            "scale_x_y": self.scale_x_y,
            "thresh": self.thresh,
        }

    @classmethod
    def from_dict(cls, d: Any, classes: int, layer: int = -1) -> YoloHead:
        """A head from a card's `postprocess.heads[i]`."""
        try:
            return cls(
                layer=layer,
                grid=(int(d["grid"][0]), int(d["grid"][1])),
                anchors=tuple((float(w), float(h)) for w, h in d["anchors"]),
                classes=classes,
                scale_x_y=float(d.get("scale_x_y", 1.0)),
                thresh=float(d.get("thresh", 0.2)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ModelFileError(f"model card field postprocess.heads is not a darknet head: {e!r}") from None


@dataclass(frozen=True)
class DarknetCfg:
    """A parsed cfg with every layer's output shape (channels, height, width) worked out."""

    path: Path
    net: Section
    layers: tuple[Section, ...]
    shapes: tuple[tuple[int, int, int], ...]  # output (C, H, W) of each layer

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the network input."""
        return (
            self.net.integer("height", 416),
            self.net.integer("width", 416),
            self.net.integer("channels", 3),
        )

    def input_of(self, index: int) -> tuple[int, int, int]:
        """The (C, H, W) that layer `index` takes: the previous layer's output, or the image."""
        if index == 0:
            h, w, c = self.input_shape
            return (c, h, w)
        return self.shapes[index - 1]

    def heads(self) -> list[YoloHead]:
        """The [yolo] layers, in cfg order (the order OpenCV lists its unconnected outputs)."""
        return [_yolo_head(s, self.input_of(s.index)) for s in self.layers if s.kind == "yolo"]

    def weight_floats(self) -> int:
        """How many float32 values the .weights file must hold after its header."""
        total = 0
        for s in self.layers:
            if s.kind == "convolutional":
                c = self.input_of(s.index)[0]
                filters, size, groups = s.integer("filters"), s.integer("size"), s.integer("groups", 1)
                per_filter = 4 if s.integer("batch_normalize", 0) else 1  # beta (+ gamma, mean, var)
                total += filters * per_filter + filters * (c // groups) * size * size
        return total


def read_cfg(path: str | Path) -> DarknetCfg:
    """Parse a Darknet .cfg and work out every layer's shape; a bad file is one clear error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ModelFileError(f"Darknet cfg {path} does not exist") from None
    except OSError as e:
        raise ModelFileError(f"cannot read Darknet cfg {path}: {e.strerror or e}") from None
    return parse_cfg(text, path)


def parse_cfg(text: str, path: Path = Path("model.cfg")) -> DarknetCfg:
    """Parse cfg text (see `read_cfg`); `path` only names the file in errors."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ModelFileError(f"{path.name} line {number}: {raw.strip()!r} is not a [section] header")
            kind = line[1:-1].strip().lower()
            index = -1 if kind in ("net", "network") else sum(s.index >= 0 for s in sections)
            sections.append(Section(kind, {}, number, index, path.name))
        elif "=" in line and sections:
            key, value = (p.strip() for p in line.split("=", 1))
            sections[-1].options[key.lower()] = value
        else:
            raise ModelFileError(
                f"{path.name} line {number}: {raw.strip()!r} is neither a [section] nor key=value: "
                "is this a Darknet .cfg?"
            )
    if not sections or sections[0].kind not in ("net", "network"):
        raise ModelFileError(f"{path.name} does not start with a [net] section: is this a Darknet .cfg?")
    net, layers = sections[0], tuple(sections[1:])
    if not layers:
        raise ModelFileError(f"{path.name} has a [net] section but no layers")
    cfg = DarknetCfg(path, net, layers, ())
    h, w, c = cfg.input_shape
    if min(h, w, c) <= 0:
        raise ModelFileError(f"{path.name}: [net] width, height and channels must be positive")
    shapes: list[tuple[int, int, int]] = []
    for s in layers:
        shapes.append(_output_shape(s, (c, h, w) if s.index == 0 else shapes[-1], shapes, path))
    cfg = DarknetCfg(path, net, layers, tuple(shapes))
    if not cfg.heads():
        raise UnsupportedError(f"{path.name} has no [yolo] layer: edgekit runs Darknet YOLO detectors only")
    return cfg


def _output_shape(
    s: Section, shape: tuple[int, int, int], shapes: Sequence[tuple[int, int, int]], path: Path
) -> tuple[int, int, int]:
    c, h, w = shape
    if s.kind not in LAYER_KINDS:
        raise UnsupportedError(
            f"{s.where()} is a layer edgekit cannot run (it knows {', '.join(LAYER_KINDS)})"
        )
    activation = s.text("activation", "linear")
    if activation not in ACTIVATIONS:
        raise UnsupportedError(f"{s.where()} has activation={activation}, not one of {ACTIVATIONS}")
    if s.kind == "convolutional":
        size, stride, filters = s.integer("size"), s.integer("stride", 1), s.integer("filters")
        groups = s.integer("groups", 1)
        pad = size // 2 if s.integer("pad", 0) else s.integer("padding", 0)
        if size < 1 or stride < 1 or filters < 1 or groups < 1 or c % groups or filters % groups:
            raise ModelFileError(
                f"{s.where()} has size={size} stride={stride} filters={filters} "
                f"groups={groups} on {c} channels, which cannot be"
            )
        return (filters, (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1)
    if s.kind == "maxpool":
        size, stride = s.integer("size", 2), s.integer("stride", 2)
        padding = s.integer("padding", size - 1)
        return (c, (h + padding - size) // stride + 1, (w + padding - size) // stride + 1)
    if s.kind == "route":
        sources = [shapes[i] for i in route_sources(s, len(shapes), path)]
        if len({src[1:] for src in sources}) > 1:
            raise ModelFileError(f"{s.where()} joins layers of different sizes {sources}")
        groups, group_id = s.integer("groups", 1), s.integer("group_id", 0)
        channels = sum(src[0] for src in sources)
        if groups < 1 or not 0 <= group_id < groups or channels % groups:
            raise ModelFileError(f"{s.where()} cannot take group {group_id} of {groups}")
        return (channels // groups, *sources[0][1:])
    if s.kind == "upsample":
        stride = s.integer("stride", 2)
        return (c, h * stride, w * stride)
    if s.kind == "shortcut":
        (src,) = (shapes[i] for i in route_sources(s, len(shapes), path, key="from"))
        if src[1:] != (h, w):
            raise ModelFileError(f"{s.where()} adds a {src} layer to a {shape} one")
        return shape
    if s.kind == "yolo":
        _yolo_head(s, shape)  # checks it now, so a bad head fails when the cfg is read
    return shape  # yolo, dropout: same shape as their input


def route_sources(s: Section, index_count: int, path: Path, key: str = "layers") -> list[int]:
    """Absolute indices of the layers a [route] (`layers=`) or [shortcut] (`from=`) reads."""
    out = []
    for v in s.integers(key):
        i = v + s.index if v < 0 else v
        if not 0 <= i < index_count:
            raise ModelFileError(f"{s.where()} refers to layer {v}, which is not before it")
        out.append(i)
    if not out:
        raise ModelFileError(f"{s.where()} has an empty {key}=")
    return out


def _yolo_head(s: Section, shape: tuple[int, int, int]) -> YoloHead:
    classes = s.integer("classes")
    anchors = s.reals("anchors")
    mask = s.integers("mask") if "mask" in s.options else list(range(len(anchors) // 2))
    if len(anchors) % 2 or any(not 0 <= m < len(anchors) // 2 for m in mask) or classes < 1:
        raise ModelFileError(f"{s.where()} has a mask that does not fit its anchors, or no classes")
    if s.integer("new_coords", 0):
        raise UnsupportedError(f"{s.where()} uses new_coords=1 (scaled-YOLOv4), which edgekit cannot decode")
    head = YoloHead(
        layer=s.index,
        grid=(shape[1], shape[2]),
        anchors=tuple((anchors[2 * m], anchors[2 * m + 1]) for m in mask),
        classes=classes,
        scale_x_y=s.real("scale_x_y", 1.0),
        thresh=s.real("thresh", 0.2),
    )
    if shape[0] != head.channels:
        raise ModelFileError(
            f"{s.where()} needs {head.channels} channels ({len(mask)} anchors x (5 + {classes} "
            f"classes)) but the layer before it gives {shape[0]}: set that layer's filters={head.channels}"
        )
    return head


# --- the .weights file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsHeader:
    major: int
    minor: int
    revision: int
    seen: int
    size: int  # bytes the header takes (20 with a 64-bit `seen`, 16 with a 32-bit one)


def read_weights_header(data: bytes, path: Path) -> WeightsHeader:
    """The version and images-seen header; `seen` is 64-bit from format 0.2 on, as Darknet writes it."""
    if len(data) < 16:
        raise ModelFileError(f"{path} is {len(data)} bytes: too short to be a Darknet .weights file")
    major, minor, revision = struct.unpack_from("<3i", data)
    if major > 1000 or minor > 1000:
        raise UnsupportedError(
            f"{path} holds transposed weights (version {major}.{minor}), which edgekit cannot read"
        )
    wide = major * 10 + minor >= 2
    (seen,) = struct.unpack_from("<q" if wide else "<i", data, 12)
    return WeightsHeader(major, minor, revision, seen, 20 if wide else 16)


def check_weights(cfg: DarknetCfg, path: Path) -> WeightsHeader:
    """Check that `path` holds exactly the weights `cfg` needs, naming expected and actual bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
            size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFileError(f"Darknet weights {path} do not exist") from None
    except OSError as e:
        raise ModelFileError(f"cannot read Darknet weights {path}: {e.strerror or e}") from None
    header = read_weights_header(head, path)
    expected = 4 * cfg.weight_floats()
    got = size - header.size
    if got != expected:
        why = "truncated" if got < expected else "too long"
        raise ModelFileError(
            f"{path.name} holds {got:,} bytes of weights after its {header.size}-byte header but "
            f"{cfg.path.name} needs {expected:,}: the file is {why} or belongs to another cfg"
        )
    return header


def model_pair(path: str | Path) -> tuple[Path, Path]:
    """(cfg, weights) for a Darknet model named by either file: the other has the same stem beside it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (CFG_SUFFIX, WEIGHTS_SUFFIX):
        raise ModelFileError(f"{path.name} is neither a Darknet .cfg nor a .weights file")
    cfg = path if suffix == CFG_SUFFIX else path.with_suffix(CFG_SUFFIX)
    weights = path if suffix == WEIGHTS_SUFFIX else path.with_suffix(WEIGHTS_SUFFIX)
    if not cfg.exists():
        raise ModelFileError(f"no Darknet cfg for {path.name}: expected {cfg.name} beside it")
    if not weights.exists():
        raise ModelFileError(
            f"no weights for {cfg.name}: expected {weights.name} beside it (a Darknet model is a .cfg "
            "and a .weights file with the same name)"
        )
    return cfg, weights


# --- the card ------------------------------------------------------------------------------------


def labels_for(cfg: DarknetCfg, labels: Sequence[str] | None = None) -> tuple[str, ...]:
    """The class names: those given, else COCO's for 80 classes, else `<stem>.names` beside the cfg,
    else the class numbers."""
    classes = cfg.heads()[0].classes
    if labels is None:
        names = cfg.path.with_suffix(".names")
        if classes == 80:
            from edgekit.runtime.labels import COCO_CLASSES

            labels = COCO_CLASSES
        elif names.exists():
            labels = read_labels(names)
        else:
            labels = [str(i) for i in range(classes)]
    if len(labels) != classes:
        raise ModelFileError(f"{cfg.path.name} detects {classes} classes but {len(labels)} labels were given")
    return tuple(labels)


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names from a Darknet `.names` file (or any text file): one a line, blank lines skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"cannot read labels from {path}: {getattr(e, 'strerror', None) or e}") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise ModelFileError(f"{path} holds no labels (one class name a line)")
    return names


def darknet_card(
    cfg: DarknetCfg,
    labels: Sequence[str],
    input: TensorSpec,
    output: TensorSpec,
    fmt: str,
    **fields: Any,
) -> ModelCard:
    """The detect card of a Darknet YOLO: a plain resize to the [net] size, pixels to [0, 1] RGB (as
    `cv2.dnn.blobFromImage(img, 1/255, size, swapRB=True)`), and the heads' anchors and grids."""
    h, w, c = cfg.input_shape
    pixels = ImageSpec((h, w), c, 1 / 255, 0.0, "stretch")
    return ModelCard(
        task="detect",
        labels=tuple(labels),
        input=input,
        output=output,
        preprocess=pixels.to_dict(),
        postprocess={
            "format": "darknet",
            "input_size": [h, w],
            "heads": [head.to_dict() for head in cfg.heads()],
            "conf": DEFAULT_CONF,
            "iou": DEFAULT_IOU,
            "agnostic": True,  # one NMS over every class, as cv2.dnn.NMSBoxes in the course
        },
        recipe=f"darknet:{cfg.path.stem}",
        format=fmt,
        **fields,
    )


def read_darknet_card(path: Path) -> ModelCard:
    """The card `edgekit run` infers for a Darknet model (no card is inside a cfg), for `edgekit info`."""
    cfg = read_cfg(model_pair(path)[0])
    h, w, c = cfg.input_shape
    first = cfg.heads()[0]
    return darknet_card(
        cfg,
        labels_for(cfg),
        TensorSpec("data", (1, c, h, w), "float32", "NCHW"),
        TensorSpec(f"yolo_{first.layer}", (first.rows, 5 + first.classes), "float32"),
        "darknet",
    )
