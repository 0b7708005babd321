"""Cards for models that came with none: described on the command line (`--task`, `--labels`,
`--normalize`) as an image model, or, with nothing said, a plain tensor model (arrays in, arrays
out) whose inputs export can generate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard, TensorSpec, now_iso, sha256_arrays
from edgekit.errors import ConfigError, UnsupportedError
from edgekit.runtime.preprocess import ImageSpec

# ---- describing a model that has no card --------------------------------------------------------

NORMALIZE = {"0..1": (1 / 255, 0.0), "-1..1": (1 / 127.5, -1.0), "none": (1.0, 0.0)}


@dataclass(frozen=True)
class CardHints:
    """What `--task`, `--labels`, `--normalize`/`--scale`/`--offset` say about a model; None: not given."""

    task: str | None = None
    labels: str | None = None  # a file with one label per line, or "a,b,c"
    normalize: str | None = None  # a key of NORMALIZE
    scale: float | None = None
    offset: float | None = None

    def __post_init__(self) -> None:
        if self.normalize is not None and self.normalize not in NORMALIZE:
            raise ConfigError(f"unknown --normalize {self.normalize!r}: use one of {', '.join(NORMALIZE)}")
        if self.normalize is not None and (self.scale is not None or self.offset is not None):
            raise ConfigError("--normalize and --scale/--offset say the same thing: give one or the other")

    def given(self) -> bool:
        return any(v is not None for v in vars(self).values())

    def scale_offset(self) -> tuple[float, float] | None:
        if self.normalize is not None:
            return NORMALIZE[self.normalize]
        if self.scale is not None or self.offset is not None:
            return (1.0 if self.scale is None else self.scale, 0.0 if self.offset is None else self.offset)
        return None

    def label_list(self) -> tuple[str, ...] | None:
        if self.labels is None:
            return None
        path = Path(self.labels)
        if path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"cannot read --labels file {path}: {e}") from None
            labels = tuple(s.strip() for s in lines if s.strip())
        else:
            labels = tuple(s.strip() for s in self.labels.split(",") if s.strip())
        if not labels:
            raise ConfigError(f"--labels {self.labels!r} names no labels: give a file or a,b,c")
        return labels

    def check_task(self) -> None:
        """The task exists and can be described from these flags (an image task)."""
        if self.task is None:
            return
        from edgekit.runtime.tasks import get_task

        task = get_task(self.task)
        if task.accepts != "image":
            raise UnsupportedError(
                f"a {self.task} model needs the card its recipe wrote ({task.accepts} preprocessing "
                "settings cannot be given as flags): put its card.json beside the model"
            )


def image_spec_for(shape: tuple[int | None, ...], scale: float, offset: float) -> ImageSpec:
    """The ImageSpec of a model input: (N, H, W, C), or (N, D) holding a flattened square image."""
    dims = tuple(shape[1:])
    if len(dims) == 2 and None not in dims:  # (H, W): rows of a grayscale image (an LSTM over rows)
        dims = (*dims, 1)
    if len(dims) == 3 and dims[2] in (1, 3) and None not in dims:
        return ImageSpec(size=(int(dims[0]), int(dims[1])), channels=int(dims[2]), scale=scale, offset=offset)
    if len(dims) == 1 and dims[0]:
        for channels in (1, 3):
            side = int(round((dims[0] / channels) ** 0.5))
            if side * side * channels == dims[0]:
                return ImageSpec(size=(side, side), channels=channels, scale=scale, offset=offset)
    raise UnsupportedError(
        f"the model input {tuple(shape)} is not an image (N, H, W[, 1|3]) nor a flattened square one: "
        "describe it with a card.json beside the model"
    )


def _activation(model: Any) -> str:
    last = model.layers[-1] if model.layers else None
    act = (last.get_config().get("activation") if last is not None else None) or "linear"
    return {"softmax": "softmax", "sigmoid": "sigmoid"}.get(str(act), "logits")


def card_for(
    model: Any, path: Path, hints: CardHints, *, card: ModelCard | None, labels: tuple[str, ...] = ()
) -> ModelCard:
    """The card of `model`: the one beside it with the hints applied, or one made from the hints
    (labels: --labels, else `labels` from the data's class folders, else "0".."N-1")."""
    from edgekit.export.graph import single_input

    tensor = single_input(model)
    shape = tuple(tensor.shape)
    if card is not None:
        changes: dict[str, Any] = {}
        if hints.task:
            changes["task"] = hints.task
        if hints.label_list():
            changes["labels"] = hints.label_list()
        if hints.scale_offset() is not None:
            scale, offset = hints.scale_offset()
            changes["preprocess"] = {**card.preprocess, "scale": scale, "offset": offset}
        return card.replace(**changes)
    if not hints.task:
        return tensor_card_for(model)
    scale, offset = hints.scale_offset() or NORMALIZE["0..1"]
    spec = image_spec_for(shape, scale, offset)
    out_shape = tuple(model.outputs[0].shape)
    classes = int(np.prod([d for d in out_shape[1:] if d])) if len(out_shape) == 2 else 0
    names = hints.label_list() or labels or tuple(str(i) for i in range(max(classes, 1)))
    activation = _activation(model)
    valid = {classes, 2} if classes == 1 else {classes}  # one sigmoid unit: two labels
    if classes and len(names) not in valid:
        raise ConfigError(f"--labels names {len(names)} classes but {path.name} outputs {classes} scores")
    return keras_model_card(
        model,
        task=hints.task,
        labels=names,
        input=TensorSpec("input", shape, str(tensor.dtype or "float32"), "NHWC" if len(shape) == 4 else "NC"),
        output=TensorSpec("scores", out_shape, "float32", "NC" if len(out_shape) == 2 else ""),
        preprocess=spec.to_dict(),
        postprocess={"activation": activation},
    )


def keras_model_card(model: Any, **fields: Any) -> ModelCard:
    """The card of a Keras model that came with none: `fields` describe its task and tensors; it
    has no recipe, dataset or training metrics, and its weights' hash is taken here."""
    return ModelCard(
        recipe="",
        hparams={},
        dataset={},
        metrics={},
        format="keras",
        quantization="fp32",
        weights_sha256=sha256_arrays([np.asarray(w) for w in model.get_weights()]),
        created=now_iso(),
        **fields,
    )


def _value_range(model: Any, dtype: str) -> tuple[float, float]:
    """The values generated inputs take: token ids below the first Embedding's vocabulary for an
    integer input, else [-1, 1] (most normalised inputs)."""
    if np.dtype(dtype).kind not in "iu":
        return (-1.0, 1.0)
    from edgekit.export.graph import _sublayers

    vocab = next((int(lay.input_dim) for lay in _sublayers(model) if hasattr(lay, "input_dim")), None)
    return (0, (vocab or 2) - 1)


def tensor_card_for(model: Any) -> ModelCard:
    """The card of a Keras model that has no task: arrays in as they are, its outputs out (the
    runtime's `tensor` task), with the input's shape, dtype and range to generate inputs from."""
    from edgekit.export.graph import single_input

    tensor = single_input(model)
    shape = tuple(tensor.shape)
    dtype = str(tensor.dtype or "float32")
    out = model.outputs[0]
    return keras_model_card(
        model,
        task="tensor",
        labels=(),
        input=TensorSpec("input", shape, dtype, ""),
        output=TensorSpec("output", tuple(out.shape), str(out.dtype or "float32"), ""),
        preprocess={
            "kind": "tensor",
            "sample": {"shape": list(shape[1:]), "dtype": dtype, "range": list(_value_range(model, dtype))},
        },
        postprocess={},
    )
