"""`edgekit import darknet`: a Darknet YOLO cfg + weights rebuilt as the same Keras network.

The Keras model takes (1, H, W, 3) RGB in [0, 1] (a plain resize, as `cv2.dnn.blobFromImage(img,
1/255, size, swapRB=True)` makes it) and gives the raw tensor feeding each `[yolo]` layer, channels
last. Decoding (sigmoid, grid, anchors) stays out of the model and happens in the runtime
(`edgekit.runtime.tasks.darknet`), exactly as OpenCV's yolo layer does it: int8 quantization then
sees only convolutions, each head is quantized on its own range, and the exported TFLite/ONNX file
runs through the same decode as the OpenCV path.

Darknet semantics kept: `pad=1` is `size // 2` zeros on every side (explicit, since Keras "same"
pads a stride-2 convolution bottom-right where Darknet pads top-left); maxpool pads `padding`
(default size - 1) with `padding // 2` before, which Keras "same" matches for the cfgs in use (the
size-2 stride-1 pool of yolov3-tiny included); batch norm uses epsilon 1e-6, as OpenCV's importer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import TensorSpec, now_iso, sha256_arrays
from edgekit.errors import ModelFileError, UnsupportedError
from edgekit.fileio import atomic_path, check_writable, write_text
from edgekit.runtime.darknet import (
    DarknetCfg,
    Section,
    check_weights,
    darknet_card,
    labels_for,
    read_cfg,
    read_labels,
    route_sources,
)
from edgekit.runtime.files.keras import embed_keras_card

BN_EPSILON = 1e-6  # OpenCV's Darknet importer (Darknet itself adds .00001 or .000001 by version)


@dataclass(frozen=True)
class ImportResult:
    model: Path
    card: Path
    heads: int
    parameters: int


def build_darknet(cfg: DarknetCfg):
    """The cfg's network as a Keras functional model whose outputs are the raw [yolo] inputs."""
    import keras
    from keras import layers

    h, w, c = cfg.input_shape
    image = keras.Input((h, w, c), name="image")
    outs: list[Any] = []
    heads: list[Any] = []
    for s in cfg.layers:
        x = image if s.index == 0 else outs[-1]
        if s.kind == "convolutional":
            x = _conv(layers, s, x)
        elif s.kind == "maxpool":
            x = _maxpool(layers, s, x, cfg.input_of(s.index)[1:], cfg.path)
        elif s.kind == "route":
            sources = [outs[i] for i in route_sources(s, len(outs), cfg.path)]
            x = sources[0] if len(sources) == 1 else layers.Concatenate(name=f"route_{s.index}")(sources)
            groups, group_id = s.integer("groups", 1), s.integer("group_id", 0)
            if groups > 1:
                part = cfg.shapes[s.index][0]
                x = x[..., group_id * part : (group_id + 1) * part]  # a slice op, not a Lambda
        elif s.kind == "upsample":
            x = layers.UpSampling2D(s.integer("stride", 2), interpolation="nearest", name=f"up_{s.index}")(x)
        elif s.kind == "shortcut":
            (src,) = route_sources(s, len(outs), cfg.path, key="from")
            if s.real("alpha", 1.0) != 1.0 or s.real("beta", 0.0) != 0.0 or "weights_type" in s.options:
                raise UnsupportedError(f"{s.where()} is a weighted shortcut, which edgekit cannot build")
            x = layers.Add(name=f"shortcut_{s.index}")([x, outs[src]])
            x = _activation(layers, s, x)
        elif s.kind == "yolo":
            heads.append(layers.Identity(name=f"yolo_{s.index}")(x))
        elif s.kind != "dropout":  # dropout is the identity at inference
            raise UnsupportedError(f"{s.where()} is a layer edgekit cannot build in Keras")
        outs.append(x)
    return keras.Model(image, heads, name=_name(cfg.path.stem))


def _name(stem: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem) or "darknet"


def _conv(layers, s: Section, x):
    size, stride, filters = s.integer("size"), s.integer("stride", 1), s.integer("filters")
    pad = size // 2 if s.integer("pad", 0) else s.integer("padding", 0)
    bn = bool(s.integer("batch_normalize", 0))
    if pad and stride == 1 and size % 2 == 1 and pad == size // 2:
        padding = "same"  # symmetric here, so Keras' own padding is Darknet's
    else:
        if pad:
            # Darknet pads `pad` on every side; the windows never reach the bottom-right excess
            x = layers.ZeroPadding2D(pad, name=f"pad_{s.index}")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        size,
        stride,
        padding=padding,
        groups=s.integer("groups", 1),
        use_bias=not bn,
        name=f"conv_{s.index}",
    )(x)
    if bn:
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"bn_{s.index}")(x)
    return _activation(layers, s, x)


def _activation(layers, s: Section, x):
    kind, name = s.text("activation", "linear"), f"act_{s.index}"
    if kind == "linear":
        return x
    if kind == "leaky":
        return layers.LeakyReLU(negative_slope=0.1, name=name)(x)
    keras_name = {"relu": "relu", "logistic": "sigmoid", "mish": "mish", "swish": "silu"}[kind]
    return layers.Activation(keras_name, name=name)(x)


def _maxpool(layers, s: Section, x, hw: tuple[int, int], path: Path):
    size, stride = s.integer("size", 2), s.integer("stride", 2)
    padding = s.integer("padding", size - 1)
    # Darknet: out = (n + padding - size) // stride + 1 with padding // 2 before; pick the Keras
    # padding that gives the same windows, or say this pool cannot be built
    for mode in ("valid", "same"):
        if all(
            _keras_pool(n, size, stride, mode) == ((n + padding - size) // stride + 1, padding // 2)
            for n in hw
        ):
            return layers.MaxPooling2D(size, stride, padding=mode, name=f"pool_{s.index}")(x)
    raise UnsupportedError(
        f"{s.where()} pads {padding} around a size-{size} stride-{stride} window on a "
        f"{hw[0]}x{hw[1]} map, which no Keras pooling reproduces"
    )


def _keras_pool(n: int, size: int, stride: int, mode: str) -> tuple[int, int]:
    """(output length, padding before) of a Keras/TensorFlow pooling along one axis."""
    if mode == "valid":
        return ((n - size) // stride + 1, 0)
    out = math.ceil(n / stride)
    return (out, max((out - 1) * stride + size - n, 0) // 2)


def load_darknet_weights(model, cfg: DarknetCfg, weights: Path) -> dict[str, int]:
    """Load a .weights file into `build_darknet(cfg)`'s layers; returns the file's header fields.

    Per convolution, in cfg order: biases (batch-norm beta), then with batch norm its scales
    (gamma), rolling means and variances, then the kernel as (out, in / groups, kh, kw)."""
    header = check_weights(cfg, weights)
    data = np.fromfile(weights, dtype="<f4", offset=header.size)
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        pos += n
        return data[pos - n : pos]

    for s in cfg.layers:
        if s.kind != "convolutional":
            continue
        filters, size, groups = s.integer("filters"), s.integer("size"), s.integer("groups", 1)
        channels = cfg.input_of(s.index)[0] // groups
        bias = take(filters)
        if s.integer("batch_normalize", 0):
            gamma, mean, var = take(filters), take(filters), take(filters)
            model.get_layer(f"bn_{s.index}").set_weights([gamma, bias, mean, var])
        kernel = take(filters * channels * size * size).reshape(filters, channels, size, size)
        conv = model.get_layer(f"conv_{s.index}")
        kernel = kernel.transpose(2, 3, 1, 0)  # Keras: (kh, kw, in / groups, out)
        conv.set_weights([kernel] if s.integer("batch_normalize", 0) else [kernel, bias])
    if pos != data.size:  # check_weights made sure of the size; this guards the walk itself
        raise ModelFileError(f"{weights.name}: read {pos} of {data.size} weights; the cfg walk is wrong")
    return {"major": header.major, "minor": header.minor, "revision": header.revision, "seen": header.seen}


def import_darknet(
    cfg_path: Path,
    weights_path: Path | None = None,
    out_dir: Path | None = None,
    *,
    labels_path: Path | None = None,
    force: bool = False,
) -> ImportResult:
    """Build the cfg in Keras, load the weights, write `model.keras` and `card.json` into `out_dir`
    (default: a folder named after the cfg, beside it)."""
    from edgekit.tfutil import import_tf

    cfg_path = Path(cfg_path)
    cfg = read_cfg(cfg_path)
    weights_path = Path(weights_path) if weights_path else cfg_path.with_suffix(".weights")
    if not weights_path.exists():
        raise ModelFileError(
            f"no weights for {cfg_path.name}: {weights_path} does not exist (pass the .weights file)"
        )
    check_weights(cfg, weights_path)
    labels = labels_for(cfg, read_labels(labels_path) if labels_path else None)
    out_dir = Path(out_dir) if out_dir else cfg_path.with_name(cfg_path.stem)
    model_path, card_path = out_dir / "model.keras", out_dir / "card.json"
    check_writable(model_path, force=force)
    check_writable(card_path, force=force)

    import_tf()  # quietly, before Keras is imported by build_darknet
    model = build_darknet(cfg)
    header = load_darknet_weights(model, cfg, weights_path)
    first = cfg.heads()[0]
    card = darknet_card(
        cfg,
        labels,
        TensorSpec("image", (None, *cfg.input_shape), "float32", "NHWC"),
        TensorSpec(f"yolo_{first.layer}", (None, *first.grid, first.channels), "float32", "NHWC"),
        "keras",
        hparams={"cfg": cfg_path.name, "weights": weights_path.name, "darknet_header": header},
        weights_sha256=sha256_arrays([np.asarray(w) for w in model.get_weights()]),
        created=now_iso(),
    )
    with atomic_path(model_path, keep_suffix=True) as tmp:
        model.save(tmp)
        embed_keras_card(tmp, card)  # the card travels inside model.keras too
    write_text(card_path, card.to_json(indent=2))
    return ImportResult(model_path, card_path, len(model.outputs), int(model.count_params()))
