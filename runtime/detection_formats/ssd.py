"""`ssd-anchors`: MediaPipe SSD detectors with fixed anchors (BlazeFace).

Two outputs: box+keypoint regressors (1, N, 4+2k) and score logits (1, N, 1), or the same split
into one output per anchor layer (the BlazeFace ONNX conversions). Decoded as MediaPipe's
TensorsToDetectionsCalculator does: offsets in input pixels around each anchor, sigmoid scores,
weighted NMS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import (
    Detection,
    LetterboxInfo,
    weighted_merge,
)
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    DetectionSettings,
    FrameDecoder,
    common_settings,
    output_shapes,
)
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor


@dataclass(frozen=True)
class SsdAnchorOptions:
    """MediaPipe's SsdAnchorsCalculatorOptions, field for field, so a graph's .pbtxt (or a JSON of
    it, `--anchors FILE`) gives the anchors its model was trained with."""

    input_size_height: int
    input_size_width: int
    strides: tuple[int, ...]
    num_layers: int = 0  # 0: one layer per stride
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True
    reduce_boxes_in_lowest_layer: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "anchors") -> SsdAnchorOptions:
        """The options from a dict of MediaPipe's field names; one sentence naming a bad field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelFileError(
                f"{source} has unknown field {unknown[0]!r}: use MediaPipe's {sorted(known)}"
            )
        try:
            values = dict(d)
            for key in ("strides", "aspect_ratios"):
                if key in values:
                    values[key] = tuple((int if key == "strides" else float)(v) for v in values[key])
            opts = cls(**values)
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{source} is not an SSD anchor configuration: {e}") from None
        if not opts.strides or opts.input_size_height <= 0 or opts.input_size_width <= 0:
            raise ModelFileError(f"{source} needs input_size_height, input_size_width and strides")
        return opts

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v, tuple) else v
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }

    def anchors(self) -> np.ndarray:
        """(N, 4) anchors x, y, w, h normalised, as MediaPipe's SsdAnchorsCalculator makes them."""
        return np.concatenate(self.layers()).astype(np.float32)

    def layers(self) -> list[np.ndarray]:
        """The anchors of each run of layers with one stride (MediaPipe merges them into one grid,
        each adding its aspect ratios and an interpolated scale)."""
        strides = self.strides
        n = self.num_layers or len(strides)

        def scale(i: int) -> float:
            if n == 1:
                return (self.min_scale + self.max_scale) / 2
            return self.min_scale + (self.max_scale - self.min_scale) * i / (n - 1)

        layers, layer = [], 0
        while layer < n:
            ratios, scales = [], []
            last = layer
            while last < n and strides[last] == strides[layer]:
                if last == 0 and self.reduce_boxes_in_lowest_layer:
                    ratios += [1.0, 2.0, 0.5]
                    scales += [0.1, scale(last), scale(last)]
                else:
                    ratios += list(self.aspect_ratios)
                    scales += [scale(last)] * len(self.aspect_ratios)
                    if self.interpolated_scale_aspect_ratio > 0:
                        following = 1.0 if last == n - 1 else scale(last + 1)
                        scales.append(math.sqrt(scale(last) * following))
                        ratios.append(self.interpolated_scale_aspect_ratio)
                last += 1
            root = np.sqrt(np.array(ratios, dtype=np.float32))
            wh = np.stack([np.array(scales, np.float32) * root, np.array(scales, np.float32) / root], axis=1)
            if self.fixed_anchor_size:
                wh[:] = 1.0
            rows = math.ceil(self.input_size_height / strides[layer])
            cols = math.ceil(self.input_size_width / strides[layer])
            y, x = np.mgrid[:rows, :cols]
            centres = np.stack(
                [(x + self.anchor_offset_x) / cols, (y + self.anchor_offset_y) / rows], axis=-1
            ).reshape(-1, 1, 2)
            per_cell = np.broadcast_to(wh, (len(centres), len(wh), 2))
            layers.append(
                np.concatenate([np.broadcast_to(centres, per_cell.shape), per_cell], axis=2).reshape(-1, 4)
            )
            layer = last
        return layers


@dataclass(frozen=True)
class SsdSpec:
    """A known MediaPipe SSD detector: its anchors, keypoints and thresholds (from its graph's .pbtxt)."""

    name: str
    options: SsdAnchorOptions
    keypoints: int
    labels: tuple[str, ...]
    score_threshold: float = 0.5
    iou_threshold: float = 0.3
    asset: str | None = None  # the model file shipped in edgekit/runtime/assets, if any

    @property
    def input_size(self) -> int:
        return self.options.input_size_height

    def anchors(self) -> np.ndarray:
        """The (N, 4) anchors of this layout."""
        return self.options.anchors()


def _square(
    size: int, strides: tuple[int, ...], interpolated: float = 1.0, min_scale: float = 0.1484375
) -> SsdAnchorOptions:
    return SsdAnchorOptions(
        size, size, strides, min_scale=min_scale, interpolated_scale_aspect_ratio=interpolated
    )


# MediaPipe's graphs, checked against google-ai-edge/mediapipe (each SsdAnchorsCalculator and
# TensorsToDetectionsCalculator: options, num_boxes, num_coords, min_score_thresh; all XYWH, i.e.
# reverse_output_order, and WEIGHTED NMS at 0.3): modules/face_detection/face_detection_short_range
# and _full_range.pbtxt, modules/palm_detection/palm_detection_cpu.pbtxt and
# modules/pose_detection/pose_detection_cpu.pbtxt at 85c0cdc (2026); the models they replaced from
# the history: back-camera face 256 (graphs/face_detection/face_detection_back_*.pbtxt, a9b643e,
# 2021-05; from 8b57bf8, 2021-06, face_detection_back.tflite is 192 px with the full-range
# anchors and is matched as full range), palm 256 (graphs/hand_tracking/subgraphs/
# hand_detection_cpu.pbtxt, a2a63e3, 2019-09), palm 128 (2b58cce, 2020-12) and pose 128 (350fbb2,
# 2021-02). min_scale does not move fixed-size anchors; it is kept as the graph has it.
BLAZEFACE_SHORT_RANGE = SsdSpec(
    "face_detection_short_range", _square(128, (8, 16, 16, 16)), 6, ("face",),
    asset="face_detection_short_range.tflite",
)  # fmt: skip
BLAZEFACE_FULL_RANGE = SsdSpec(
    "face_detection_full_range", _square(192, (4,), 0.0), 6, ("face",), 0.6,
    asset="face_detection_full_range.tflite",
)  # fmt: skip
BLAZEFACE_BACK = SsdSpec(
    "face_detection_back", _square(256, (16, 32, 32, 32), min_scale=0.15625), 6, ("face",), 0.65
)
PALM_DETECTION = SsdSpec("palm_detection", _square(192, (8, 16, 16, 16)), 7, ("palm",))
PALM_DETECTION_256 = SsdSpec(
    "palm_detection_256", _square(256, (8, 16, 32, 32, 32), min_scale=0.1171875), 7, ("palm",)
)
PALM_DETECTION_128 = SsdSpec("palm_detection_128", _square(128, (8, 16, 16, 16)), 7, ("palm",))
POSE_DETECTION = SsdSpec("pose_detection", _square(224, (8, 16, 32, 32, 32)), 4, ("person",))
POSE_DETECTION_128 = SsdSpec("pose_detection_128", _square(128, (8, 16, 16, 16)), 4, ("person",))
KNOWN_SSD = (BLAZEFACE_SHORT_RANGE, BLAZEFACE_FULL_RANGE, BLAZEFACE_BACK, PALM_DETECTION, PALM_DETECTION_256,
             PALM_DETECTION_128, POSE_DETECTION, POSE_DETECTION_128)  # fmt: skip


def ssd_anchors(
    input_size: int | tuple[int, int] = 128,
    strides: Sequence[int] = (8, 16),
    anchors_per_cell: Sequence[int] = (2, 6),
) -> np.ndarray:
    """Fixed-size anchors from merged layers (a card's `strides` and `anchors_per_cell`): (N, 4) of
    x, y, w=1, h=1, normalised; layer by layer, then row, column and anchor within a cell."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    layers = []
    for stride, per_cell in zip(strides, anchors_per_cell, strict=True):
        rows, cols = math.ceil(h / stride), math.ceil(w / stride)
        y, x = np.mgrid[:rows, :cols]
        centres = np.stack([(x + 0.5) / cols, (y + 0.5) / rows], axis=-1).reshape(-1, 2)
        layers.append(np.repeat(centres, per_cell, axis=0))
    centres = np.concatenate(layers)
    return np.hstack([centres, np.ones_like(centres)]).astype(np.float32)


@dataclass(frozen=True)
class SsdSettings(DetectionSettings):
    """An `ssd-anchors` card: anchor layout, keypoint count, thresholds (MediaPipe's defaults)."""

    conf: float = 0.5
    iou: float = 0.3
    max_det: int = 100
    input_size: int | tuple[int, int] = 128
    strides: tuple[int, ...] = (8, 16)
    anchors_per_cell: tuple[int, ...] = (2, 6)
    keypoints: int = 0
    anchor_options: SsdAnchorOptions | None = None  # MediaPipe's options; None: strides + anchors_per_cell

    @cached_property
    def anchors(self) -> np.ndarray:
        """The (N, 4) anchors, made once per settings."""
        if self.anchor_options is not None:
            return self.anchor_options.anchors()
        return ssd_anchors(self.input_size, self.strides, self.anchors_per_cell)

    @cached_property
    def layer_counts(self) -> list[int]:
        """Anchors per layer of one stride, in order (how split ONNX conversions cut their outputs)."""
        if self.anchor_options is None:
            h, w = self.hw
            return [
                -(-h // s) * -(-w // s) * a for s, a in zip(self.strides, self.anchors_per_cell, strict=True)
            ]
        return [len(layer) for layer in self.anchor_options.layers()]

    @cached_property
    def logit_threshold(self) -> float:
        """The score threshold as a logit, so scores are compared before any sigmoid or decoding."""
        p = min(max(self.conf, 1e-7), 1 - 1e-7)
        return float(np.log(p / (1 - p)))

    @cached_property
    def _decoders(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    def decoder(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """For regressors of `channels` values per anchor (4 + 2 per keypoint), made once each:
        (N, 2, channels) of the scale and the offset that turn raw offsets (input pixels) into
        fractions of the input, at each anchor's size and around its centre (the box size, values
        2 and 3, is not moved); and the (channels, channels) matrix that turns a row's centre and
        size into corners and keeps its keypoints: x1, y1, x2, y2, then the keypoints."""
        made = self._decoders.get(channels)
        if made is None:
            anchors = self.anchors
            h, w = self.hw
            pairs = channels // 2
            scale = np.tile(anchors[:, 2:4] / np.array((w, h), np.float32), pairs)
            offset = np.tile(anchors[:, :2], pairs)
            offset[:, 2:4] = 0
            affine = np.stack([scale, offset], axis=1)
            corners = np.eye(channels, dtype=np.float32)
            corners[:4, :4] = [[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]]
            made = self._decoders[channels] = (affine, corners)
        return made

    @property
    def hw(self) -> tuple[int, int]:
        """The anchors' input (height, width)."""
        size = self.input_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def decode_ssd(
    regressors: np.ndarray,
    classificators: np.ndarray,
    settings: SsdSettings,
    info: LetterboxInfo | None = None,
) -> list[Detection]:
    """Decode MediaPipe SSD outputs (1, N, 4+2k) and (1, N, 1) into detections with k keypoints.

    As MediaPipe's TensorsToDetectionsCalculator: offsets are in input pixels around each
    anchor, scores are the sigmoid of logits clipped to +-100, overlapping boxes are merged
    by weighted NMS. Boxes are in original-image pixels when `info` is given, else input pixels.
    """
    logits = np.asarray(classificators, dtype=np.float32).reshape(-1)
    # threshold the logits first (sigmoid is monotonic): only the few anchors above it are decoded
    (chosen,) = (logits >= settings.logit_threshold).nonzero()
    if not chosen.size:
        return []
    raw = np.asarray(regressors, dtype=np.float32).reshape(len(logits), -1)
    affine, corners = settings.decoder(raw.shape[1])
    # `take`, not `a[chosen]`, and ufuncs, not `.all()`: the same results, but right after an invoke
    # has evicted the caches numpy's fancy indexing and Python-level wrappers cost ~10 µs a call
    affine = affine.take(chosen, axis=0)
    points = raw.take(chosen, axis=0) * affine[:, 0] + affine[:, 1]
    # MediaPipe clips logits to +-100 before the sigmoid; the chosen are above the threshold's logit
    # (at least -16.1) and a large one gives 1.0 either way, so float32 cannot overflow here
    scores = 1 / (1 + np.exp(-logits.take(chosen)))
    if not np.minimum.reduce(points[:, 2:4], axis=None) > 0:  # no width or height (or NaN): no box
        keep = (points[:, 2:4] > 0).all(axis=1)
        points, scores = points[keep], scores[keep]
    # boxes and keypoints in one array: corners by one matrix product, merged together
    rows, scores = weighted_merge(points @ corners, scores, settings.iou, settings.max_det)
    # fractions of the input -> input pixels -> the frame's pixels: one scale and shift per axis,
    # on the few merged rows as Python floats (each numpy call here, right after an invoke, cost
    # more than its work: ~35 us of ~300); the box's corners are clipped to the frame
    (gx, gy), (sx, sy), frame = to_frame(settings.hw, info)
    label = settings.labels[0] if settings.labels else "object"
    found = []
    for r, s in zip(rows.tolist(), scores.tolist(), strict=True):
        pairs = [(x * gx + sx, y * gy + sy) for x, y in zip(r[0::2], r[1::2])]
        (x1, y1), (x2, y2) = pairs[0], pairs[1]
        if frame is not None:  # clipped to the frame, as numpy's minimum(maximum(v, 0), size) did
            w, h = frame
            x1, x2 = (x1 if x1 < w else w) if x1 > 0 else 0.0, (x2 if x2 < w else w) if x2 > 0 else 0.0
            y1, y2 = (y1 if y1 < h else h) if y1 > 0 else 0.0, (y2 if y2 < h else h) if y2 > 0 else 0.0
        found.append(Detection((x1, y1, x2, y2), s, label, 0, tuple(pairs[2:])))
    return found


FrameMap = tuple[tuple[float, float], tuple[float, float], tuple[float, float] | None]
_last_map: tuple[tuple[int, int] | None, LetterboxInfo | None, FrameMap | None] = (None, None, None)


def to_frame(hw: tuple[int, int], info: LetterboxInfo | None) -> FrameMap:
    """The (x, y) gain and shift that take fractions of an (h, w) input to pixels of the frame that
    `info` fitted into it (input pixels when None), and the frame's (width, height) to clip boxes
    to. Python floats: float64, as numpy's float32 array over a tuple of Python floats gave before,
    so results with an `info` are the same bits (without one, input pixels, float64 where they were
    float32). Kept for the last `info` and found again by `is`: every frame of
    a video has the same one (`letterbox_info`), and hashing a dataclass right after an invoke
    cost ~25 us. Threads that race here at worst work it out again."""
    global _last_map
    last_hw, last_info, made = _last_map
    if made is not None and last_info is info and last_hw == hw:
        return made
    h, w = hw
    if info is None:
        made = (float(w), float(h)), (0.0, 0.0), None
    else:
        (scale_x, scale_y), (pad_x, pad_y) = info.scale, info.pad
        src_h, src_w = info.src_shape
        made = (w / scale_x, h / scale_y), (-pad_x / scale_x, -pad_y / scale_y), (float(src_w), float(src_h))
    _last_map = (hw, info, made)
    return made


class SsdFormat(DetectionFormat):
    name = "ssd-anchors"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> SsdSettings:
        pp = card.postprocess
        anchor_options = None
        try:
            if "anchors" in pp:  # MediaPipe's SsdAnchorsCalculator options
                anchor_options = SsdAnchorOptions.from_dict(
                    pp["anchors"], "model card field postprocess.anchors"
                )
                opts = anchor_options
                input_size: int | tuple[int, int] = (opts.input_size_height, opts.input_size_width)
                strides, per_cell = opts.strides, ()
            else:
                size = pp["input_size"]
                input_size = int(size) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
                strides = tuple(int(s) for s in pp["strides"])
                per_cell = tuple(int(a) for a in pp["anchors_per_cell"])
                if len(strides) != len(per_cell):
                    raise ModelFileError(
                        "model card fields postprocess.strides and anchors_per_cell differ in length"
                    )
            keypoints = int(pp.get("keypoints", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess is not an ssd-anchors spec: {e!r}") from None
        common = common_settings(
            card, options, conf=("score_threshold", 0.5), iou=("iou_threshold", 0.3), max_det=100
        )
        return SsdSettings(
            **common,
            input_size=input_size,
            strides=strides,
            anchors_per_cell=per_cell,
            keypoints=keypoints,
            anchor_options=anchor_options,
        )

    def bind(self, settings: SsdSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        n, channels = len(settings.anchors), 4 + 2 * settings.keypoints
        h, w = settings.hw
        per_layer = settings.layer_counts

        def find(last: int) -> list[int]:
            for i, o in enumerate(outputs):
                if len(o.shape) >= 2 and o.shape[-1] == last and o.shape[-2] in (n, None):
                    return [i]
            # or one output per anchor layer, as the BlazeFace ONNX conversions split them
            parts = {
                o.shape[-2]: i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[-1] == last
            }
            if len(per_layer) > 1 and len(set(per_layer)) == len(per_layer) and set(per_layer) <= set(parts):
                return [parts[count] for count in per_layer]
            raise ModelFileError(
                f"the card's anchors ({n}) need outputs shaped (1, {n}, {channels}) and (1, {n}, 1); "
                f"the model has {output_shapes(outputs)}"
            )

        regressors, scores, infos = find(channels), find(1), list(outputs)

        def read(raw: Sequence[np.ndarray], indices: list[int]) -> np.ndarray:
            if len(indices) == 1:  # one output: its own array, no anchor-sized copy per frame
                return from_tensor(raw[indices[0]], infos[indices[0]])
            return np.concatenate([from_tensor(raw[i], infos[i]) for i in indices], axis=-2)

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            return decode_ssd(read(raw, regressors), read(raw, scores), settings, info)

        return decode


FORMATS.add(SsdFormat())
