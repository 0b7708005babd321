"""SSD anchors against MediaPipe's own generator, transcribed here loop for loop from
SsdAnchorsCalculator::GenerateAnchors (mediapipe/calculators/tflite/ssd_anchors_calculator.cc):
the scale of layer i is min + (max - min) * i / (n - 1) (their mean for one layer), the lowest
layer may be reduced to three boxes, each run of equal strides shares one grid, an interpolated
anchor of scale sqrt(s_i * s_i+1) follows each layer's ratios, and centres sit at
(x + offset_x) / width, (y + offset_y) / height. BlazeFace's anchors are all 1x1, so the sizes are
checked on configurations with anchors of their own size (MediaPipe's SSD MobileNet style)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.runtime.detection_formats.ssd import (
    BLAZEFACE_FULL_RANGE,
    BLAZEFACE_SHORT_RANGE,
    SsdAnchorOptions,
)

pytestmark = pytest.mark.runtime_only


def mediapipe_anchors(o: SsdAnchorOptions) -> np.ndarray:
    num_layers = o.num_layers or len(o.strides)

    def calculate_scale(index: int) -> float:
        if num_layers == 1:
            return (o.min_scale + o.max_scale) * 0.5
        return o.min_scale + (o.max_scale - o.min_scale) * 1.0 * index / (num_layers - 1.0)

    anchors = []
    layer_id = 0
    while layer_id < num_layers:
        heights, widths, aspect_ratios, scales = [], [], [], []
        last = layer_id
        while last < len(o.strides) and o.strides[last] == o.strides[layer_id]:
            scale = calculate_scale(last)
            if last == 0 and o.reduce_boxes_in_lowest_layer:
                aspect_ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in o.aspect_ratios:
                    aspect_ratios.append(ratio)
                    scales.append(scale)
                if o.interpolated_scale_aspect_ratio > 0.0:
                    scale_next = 1.0 if last == len(o.strides) - 1 else calculate_scale(last + 1)
                    scales.append(math.sqrt(scale * scale_next))
                    aspect_ratios.append(o.interpolated_scale_aspect_ratio)
            last += 1
        for ratio, scale in zip(aspect_ratios, scales, strict=True):
            heights.append(scale / math.sqrt(ratio))
            widths.append(scale * math.sqrt(ratio))
        stride = o.strides[layer_id]
        rows = math.ceil(1.0 * o.input_size_height / stride)
        cols = math.ceil(1.0 * o.input_size_width / stride)
        for y in range(rows):
            for x in range(cols):
                for k in range(len(heights)):
                    x_center = (x + o.anchor_offset_x) * 1.0 / cols
                    y_center = (y + o.anchor_offset_y) * 1.0 / rows
                    w, h = (1.0, 1.0) if o.fixed_anchor_size else (widths[k], heights[k])
                    anchors.append((x_center, y_center, w, h))
        layer_id = last
    return np.array(anchors)


CONFIGS = {
    "blazeface-short": BLAZEFACE_SHORT_RANGE.options,
    "blazeface-full": BLAZEFACE_FULL_RANGE.options,
    # MediaPipe's SSD MobileNet v2 object detector graph: 6 layers, sizes of their own
    "ssd-mobilenet": SsdAnchorOptions(
        320,
        320,
        (16, 32, 64, 128, 256, 512),
        num_layers=6,
        min_scale=0.2,
        max_scale=0.95,
        aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333),
        reduce_boxes_in_lowest_layer=True,
        fixed_anchor_size=False,
    ),
    # a non-square input, repeated strides, offsets off the centre, no interpolated anchor
    "odd": SsdAnchorOptions(
        96,
        160,
        (8, 16, 16, 32),
        min_scale=0.15,
        max_scale=0.8,
        anchor_offset_x=0.3,
        anchor_offset_y=0.7,
        aspect_ratios=(1.0, 4.0),
        interpolated_scale_aspect_ratio=0.0,
        fixed_anchor_size=False,
    ),
    "one-layer": SsdAnchorOptions(
        64, 48, (16,), min_scale=0.2, max_scale=0.6, aspect_ratios=(0.5, 2.0), fixed_anchor_size=False
    ),
    "interpolated": SsdAnchorOptions(
        128,
        128,
        (8, 16),
        min_scale=0.1,
        max_scale=0.9,
        interpolated_scale_aspect_ratio=2.0,
        fixed_anchor_size=False,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_anchors_are_mediapipes_anchor_for_anchor(name):
    options = CONFIGS[name]
    want = mediapipe_anchors(options)
    got = options.anchors()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # each run of equal strides is one layer, in order
    layers = options.layers()
    assert sum(len(x) for x in layers) == len(want)
    assert len(layers) == len(dict.fromkeys(options.strides))


def test_the_options_round_trip_through_a_dict():
    for options in CONFIGS.values():
        d = options.to_dict()
        assert all(not isinstance(v, tuple) for v in d.values())  # JSON-ready lists
        assert SsdAnchorOptions.from_dict(d) == options


def test_boxes_and_keypoints_decode_at_each_anchors_own_size():
    """TensorsToDetectionsCalculator: x = dx / W * anchor_w + anchor_x, w = dw / W * anchor_w (y and
    h likewise with H and anchor_h), keypoints as centres; then input pixels (x W, x H)."""
    from edgekit.runtime.detection_formats.ssd import SsdSettings, decode_ssd

    options = CONFIGS["odd"]  # 96 x 160 input, anchors of their own width and height
    anchors = mediapipe_anchors(options)
    i = int(np.argmax(np.abs(anchors[:, 2] - anchors[:, 3])))  # an anchor far from square
    ax, ay, aw, ah = anchors[i]
    assert abs(aw - ah) > 0.1
    settings = SsdSettings(("thing",), conf=0.5, input_size=(96, 160), keypoints=1, anchor_options=options)
    regressors = np.zeros((1, len(anchors), 6), np.float32)
    classificators = np.full((1, len(anchors), 1), -50.0, np.float32)
    regressors[0, i] = [8.0, -6.0, 30.0, 20.0, 4.0, 2.0]
    classificators[0, i] = 1.0
    (d,) = decode_ssd(regressors, classificators, settings)
    W, H = 160, 96
    xc, yc = (8.0 / W * aw + ax) * W, (-6.0 / H * ah + ay) * H
    w, h = 30.0 / W * aw * W, 20.0 / H * ah * H
    np.testing.assert_allclose(d.box, (xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2), rtol=1e-5)
    np.testing.assert_allclose(d.keypoints, [((4.0 / W * aw + ax) * W, (2.0 / H * ah + ay) * H)], rtol=1e-5)
    assert d.score == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_a_threshold_of_one_or_more_keeps_only_certain_scores():
    from edgekit.runtime.detection_formats.ssd import SsdSettings

    assert SsdSettings(("face",), conf=1.0).logit_threshold == pytest.approx(np.log((1 - 1e-7) / 1e-7))
    assert SsdSettings(("face",), conf=2.0).logit_threshold == pytest.approx(16.118, abs=1e-3)
    assert SsdSettings(("face",), conf=0.0).logit_threshold == pytest.approx(-16.118, abs=1e-3)
    assert SsdSettings(("face",), conf=0.5).logit_threshold == 0.0


def test_the_frame_mapping_follows_the_input_size_and_the_letterbox():
    from edgekit.runtime.detection import letterbox_info
    from edgekit.runtime.detection_formats.ssd import to_frame

    assert to_frame((128, 128), None) == ((128.0, 128.0), (0.0, 0.0), None)
    assert to_frame((64, 96), None) == ((96.0, 64.0), (0.0, 0.0), None)  # another size, no frame
    info = letterbox_info((240, 560), (128, 128))
    (gx, gy), (sx, sy), frame = to_frame((128, 128), info)
    assert frame == (560.0, 240.0)
    # the input's corners land on the picture's corners
    assert (0 * gx + sx, 0 * gy + sy) != (0, 0)
    left, top = info.pad
    new_w, new_h = 560 * info.scale[0], 240 * info.scale[1]
    assert (left / 128 * gx + sx, top / 128 * gy + sy) == pytest.approx((0, 0), abs=1e-9)
    assert ((left + new_w) / 128 * gx + sx, (top + new_h) / 128 * gy + sy) == pytest.approx((560, 240))


def test_legacy_anchor_lists_must_pair_strides_with_counts():
    from edgekit.runtime.detection_formats.ssd import ssd_anchors

    with pytest.raises(ValueError):
        ssd_anchors(128, (8, 16), (2,))
    assert ssd_anchors((64, 128), (16,), (1,)).shape == (4 * 8, 4)
