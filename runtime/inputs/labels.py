"""Labels to generate: a conditional generator's input is latent noise and the wanted class, one
vector `[noise (latent), one-hot class (classes)]` (the card's preprocess kind "labels").

A raw item is a request: the class and the seed its noise is drawn from (`Request`, or a record
of a dataset with `label` and `seed` fields, or a bare class index, whose seed is then its
position in the batch). The noise is a function of the seed alone, standard normal numbers from
numpy's generator, so Keras, every exported file and the device see the same noise for the same
request, and `--seed` makes a run repeatable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.inputs import INPUT_KINDS, InputKind

# a dataset's requests: the class, the seed of its noise, and (for training) a real sample of it
REQUEST_FIELDS = ("label", "seed")


@dataclass(frozen=True)
class Request:
    """One sample to generate: its class and the seed of its noise."""

    label: int
    seed: int = 0


def latent_noise(latent: int, seed: int | Sequence[int]) -> np.ndarray:
    """The noise of one request: `latent` standard normal numbers from numpy's generator."""
    return np.random.default_rng(seed).standard_normal(latent).astype(np.float32)


def request_of(raw: Any, position: int = 0) -> Request:
    """A Request from what a source or a dataset gives (a record, a Request, a class index)."""
    if isinstance(raw, Request):
        return raw
    if isinstance(raw, np.void) and raw.dtype.names and "label" in raw.dtype.names:
        return Request(int(raw["label"]), int(raw["seed"]))
    if isinstance(raw, int | np.integer):
        return Request(int(raw), position)
    raise DataError(f"a generator takes a class to generate (a Request or a class index), not {raw!r:.60}")


@dataclass(frozen=True)
class LabelsSpec:
    latent: int
    classes: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelsSpec:
        try:
            return cls(int(d["latent"]), int(d["classes"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"the card's generator preprocessing is malformed ({e!r})") from None

    def vector(self, request: Request, seed: int | Sequence[int] | None = None) -> np.ndarray:
        """[noise, one-hot class] of one request (`seed`: instead of the request's own)."""
        if not 0 <= request.label < self.classes:
            raise DataError(
                f"class {request.label} is not one of the generator's {self.classes} (0-{self.classes - 1})"
            )
        out = np.zeros(self.latent + self.classes, np.float32)
        out[: self.latent] = latent_noise(self.latent, request.seed if seed is None else seed)
        out[self.latent + request.label] = 1.0
        return out


class LabelsInput(InputKind):
    name = "labels"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """Requests -> (N, latent + classes) float32: each one's noise, then its one-hot class."""
        spec = LabelsSpec.from_dict(preprocess)
        if not len(raw):
            return np.zeros((0, spec.latent + spec.classes), np.float32)
        return np.stack([spec.vector(request_of(r, i)) for i, r in enumerate(raw)])

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """`n` requests: classes in turn, each with its own seed."""
        spec = LabelsSpec.from_dict(preprocess)
        out = np.empty(n, dtype=[("label", "i8"), ("seed", "i8")])
        out["label"] = np.arange(n) % spec.classes
        out["seed"] = seed * 1_000_003 + np.arange(n)
        return out

    def blank(self, preprocess: Mapping[str, Any]) -> Request:
        return Request(0, 0)


INPUT_KINDS.add(LabelsInput())
