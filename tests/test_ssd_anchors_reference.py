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
