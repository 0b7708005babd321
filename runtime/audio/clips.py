"""Clips as audio sources hand them over, and the card's audio preprocessing (`AudioSpec`): a clip
fitted to the model's length and rate, its MFCCs, their normalisation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.audio.framing import mix_to_mono
from edgekit.runtime.audio.mfcc import MfccParams, is_real, mfcc_batch
from edgekit.runtime.audio.resample import fix_length, resample
from edgekit.runtime.audio.wav import as_float_signal


@dataclass(frozen=True)
class AudioClip:
    """Mono samples with their rate, as audio sources hand them over.

    `stream` names the recording a window was cut from (a long wav, the microphone), with
    `t_start` its offset in seconds; None means the clip is one whole utterance."""

    samples: np.ndarray
    sample_rate: int
    t_start: float = 0.0
    stream: str | None = None

    @property
    def seconds(self) -> float:
        """The clip's length in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def t_end(self) -> float:
        """Where the clip ends, in seconds from the start of its stream."""
        return self.t_start + self.seconds


@dataclass(frozen=True)
class AudioSpec:
    """The card's `preprocess` for audio: a clip of `clip_seconds` at `sample_rate`, its MFCCs, and
    the per-coefficient mean and std fitted on the training data (None: not normalised)."""

    sample_rate: int = 16000
    clip_seconds: float = 1.0
    mfcc: MfccParams = MfccParams()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.mfcc.sample_rate != self.sample_rate:
            raise ConfigError(
                f"audio sample_rate {self.sample_rate} differs from the MFCC sample_rate {self.mfcc.sample_rate}"
            )
        if not is_real(self.clip_seconds) or self.clip_seconds <= 0:
            raise ConfigError(f"audio clip_seconds must be a positive number, got {self.clip_seconds!r}")
        if self.frames < 1:
            raise ConfigError(
                f"a clip of {self.clip_seconds} s is shorter than one MFCC window ({self.mfcc.win_length} samples)"
            )
        if (self.mean is None) != (self.std is None):
            raise ConfigError("audio normalisation needs both mean and std, or neither")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and (len(v) != self.mfcc.n_mfcc or not all(is_real(a) for a in v)):
                raise ConfigError(f"audio normalisation {name} must hold {self.mfcc.n_mfcc} numbers")
        if self.std is not None and min(self.std) <= 0:
            raise ConfigError("audio normalisation std must be positive")

    @property
    def clip_samples(self) -> int:
        """Samples in one clip at `sample_rate`."""
        return round(self.clip_seconds * self.sample_rate)

    @property
    def frames(self) -> int:
        """MFCC frames in one clip."""
        p = self.mfcc
        n = self.clip_samples + (2 * (p.win_length // 2) if p.center else 0)
        return 0 if n < p.win_length else 1 + (n - p.win_length) // p.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(frames, coefficients): one clip's features."""
        return self.frames, self.mfcc.n_mfcc

    def to_dict(self) -> dict[str, Any]:
        """The card's preprocess entry, as plain JSON values."""
        d: dict[str, Any] = {
            "kind": "audio",
            "sample_rate": self.sample_rate,
            "clip_seconds": self.clip_seconds,
            "features": "mfcc",
            "mfcc": self.mfcc.to_dict(),
        }
        if self.mean is not None and self.std is not None:
            d["normalize"] = {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}
        return d

    @classmethod
    def from_dict(cls, d: Any) -> AudioSpec:
        """Read the card's preprocess entry; a malformed one raises DataError naming the field."""
        if not isinstance(d, dict):
            d = dict(d) if hasattr(d, "keys") else d
        if not isinstance(d, dict) or d.get("kind", "audio") != "audio":
            raise DataError(f"not an audio preprocess entry: {d!r:.80}")
        if d.get("features", "mfcc") != "mfcc":
            raise DataError(f"unknown audio features {d.get('features')!r}: edgekit computes mfcc")
        norm = d.get("normalize") or {}
        if not isinstance(norm, dict):
            raise DataError("the card's audio normalize entry must be a mapping of mean and std")
        mfcc_params = MfccParams.from_dict(d.get("mfcc", {"sample_rate": d.get("sample_rate", 16000)}))
        try:
            return cls(
                sample_rate=d.get("sample_rate", mfcc_params.sample_rate),
                clip_seconds=d.get("clip_seconds", 1.0),
                mfcc=mfcc_params,
                mean=_floats(norm.get("mean")),
                std=_floats(norm.get("std")),
            )
        except (ConfigError, TypeError) as e:
            raise DataError(f"the card's audio preprocessing is malformed: {e}") from None


def _floats(v: Any) -> tuple[float, ...] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"expected a list of numbers, got {v!r:.40}")
    return tuple(v)


def fit_clip(signal: np.ndarray, n: int) -> np.ndarray:
    """Exactly `n` samples: a shorter signal is padded with zeros at the end, a longer one cropped
    to its loudest `n` samples (where the word is), so the same clip gives the same features."""
    x = np.asarray(signal)
    if len(x) <= n:
        return fix_length(x, n)
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[n:] - energy[:-n]))
    return x[start : start + n]


def clip_signal(raw: Any, spec: AudioSpec) -> np.ndarray:
    """One raw item -> a float32 clip of `spec.clip_samples` at `spec.sample_rate`.

    `raw` is an AudioClip (resampled when its rate differs), or samples already at the spec's
    rate: 1-D, or (samples, channels) which are mixed down; int PCM is scaled to [-1, 1]."""
    if isinstance(raw, AudioClip):
        x = as_float_signal(raw.samples, "an audio clip")
        if raw.sample_rate != spec.sample_rate:
            x = resample(x, int(raw.sample_rate), spec.sample_rate)
    else:
        a = np.asarray(raw)
        if a.dtype == object:  # a row of an object array of equal-length clips
            try:
                a = a.astype(np.float32)
            except (TypeError, ValueError):
                raise DataError(f"an audio clip must hold numbers, got {a.ravel()[:1]!r:.60}") from None
        x = mix_to_mono(a) if a.ndim == 2 else as_float_signal(a, "an audio clip")
    return np.asarray(fit_clip(x, spec.clip_samples), dtype=np.float32)


def clip_mfcc(raw: Any, spec: AudioSpec) -> np.ndarray:
    """Raw clips' MFCCs, (N, frames, n_mfcc), before normalisation."""
    if not len(raw):
        return np.zeros((0, *spec.shape), np.float32)
    if (
        isinstance(raw, np.ndarray)
        and raw.ndim == 2
        and raw.dtype == np.float32
        and raw.shape[1] == spec.clip_samples
    ):
        clips = raw  # a dataset's clips, already fitted: no copy
    else:
        clips = np.stack([clip_signal(item, spec) for item in raw])
    return mfcc_batch(clips, spec.mfcc)


def audio_features(preprocess: Any, raw: Any) -> np.ndarray:
    """A batch of raw clips -> normalised MFCCs (N, frames, n_mfcc), float32: what the model takes,
    in training, export validation and on the device."""
    spec = AudioSpec.from_dict(preprocess)
    x = clip_mfcc(raw, spec)
    if spec.mean is not None and spec.std is not None:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return x.astype(np.float32, copy=False)


def fit_normalization(raw: Any, spec: AudioSpec) -> AudioSpec:
    """`spec` with the per-coefficient mean and std of the MFCCs of `raw` (the training clips)."""
    if not len(raw):
        raise DataError("cannot fit the MFCC normalisation on no clips")
    x = clip_mfcc(raw, spec).astype(np.float64)
    mean = x.mean(axis=(0, 1))
    std = np.maximum(x.std(axis=(0, 1)), 1e-3)  # a constant coefficient must not divide by zero
    return dataclasses.replace(spec, mean=tuple(map(float, mean)), std=tuple(map(float, std)))
