"""Mel filterbanks, log-mel energies and MFCCs, numpy only, with the course's settings as defaults."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.audio.wav import as_float_signal


@dataclass(frozen=True)
class MfccParams:
    """Feature settings that go into the model card; `fmax=None` means sample_rate / 2.

    `center=False` frames like tf.signal.stft (first frame starts at sample 0); `center=True`
    pads win_length // 2 zeros each side so frame i is centred on sample i * hop_length."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    n_mels: int = 40
    n_mfcc: int = 13
    fmin: float = 20.0
    fmax: float | None = None
    preemphasis: float = 0.97  # 0.0 turns it off
    log_floor: float = 1e-6  # log(max(mel_power, log_floor)): silence gives log(floor), not -inf
    center: bool = False

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"MFCC parameter {name} must be a positive integer, got {v!r}")
        for name in ("fmin", "preemphasis", "log_floor"):
            if not is_real(getattr(self, name)):
                raise ConfigError(f"MFCC parameter {name} must be a number, got {getattr(self, name)!r}")
        if self.fmax is not None and not is_real(self.fmax):
            raise ConfigError(f"MFCC parameter fmax must be a number or None, got {self.fmax!r}")
        if not isinstance(self.center, bool):
            raise ConfigError(f"MFCC parameter center must be true or false, got {self.center!r}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"MFCC win_length {self.win_length} is longer than n_fft {self.n_fft}")
        if self.n_mfcc > self.n_mels:
            raise ConfigError(f"MFCC n_mfcc {self.n_mfcc} is more than n_mels {self.n_mels}")
        if not 0.0 <= self.fmin < self.max_frequency <= self.sample_rate / 2:
            raise ConfigError(
                f"MFCC needs 0 <= fmin < fmax <= sample_rate / 2, got fmin {self.fmin}, "
                f"fmax {self.max_frequency}, sample_rate {self.sample_rate}"
            )
        if not 0.0 <= self.preemphasis < 1.0:
            raise ConfigError(f"MFCC preemphasis must be in [0, 1), got {self.preemphasis}")
        if not self.log_floor > 0:
            raise ConfigError(f"MFCC log_floor must be positive, got {self.log_floor}")

    @property
    def max_frequency(self) -> float:
        """fmax with None resolved to the Nyquist frequency."""
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON values, for the model card."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> MfccParams:
        """Read parameters back from a card; unknown keys and bad values raise DataError."""
        if not isinstance(d, dict):
            raise DataError(f"MFCC parameters must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise DataError(f"unknown MFCC parameter(s) {names}; known: {', '.join(sorted(known))}")
        try:
            return cls(**d)
        except ConfigError as e:
            raise DataError(str(e)) from None


def is_real(v: Any) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
    )


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=16)
def _tables(params: MfccParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # periodic Hann, as tf.signal.hann_window and librosa use for spectral analysis
    n = np.arange(params.win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / params.win_length)
    fb = mel_filterbank(params).astype(np.float64)
    # orthonormal DCT-II: c_k = s_k * sum_m x_m cos(pi k (2m + 1) / (2M)), s_0 = sqrt(1/M), else sqrt(2/M)
    m = params.n_mels
    k = np.arange(params.n_mfcc)
    dct = np.cos(np.pi * np.outer(2 * np.arange(m) + 1, k) / (2 * m)) * np.sqrt(2.0 / m)
    dct[:, 0] *= np.sqrt(0.5)
    for a in (window, fb, dct):
        a.flags.writeable = False
    return window, fb, dct


def mel_filterbank(params: MfccParams) -> np.ndarray:
    """HTK-mel triangular filters, shape (n_fft // 2 + 1, n_mels), float32, peak 1, unnormalised.

    mel = 1127 ln(1 + f / 700); triangles are linear in mel (as HTK, Kaldi and tf.signal's
    linear_to_mel_weight_matrix build them), with edges equally spaced from fmin to fmax."""
    n_bins = params.n_fft // 2 + 1
    bin_mel = _hz_to_mel(np.linspace(0.0, params.sample_rate / 2, n_bins))[:, None]
    edges = np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(params.max_frequency), params.n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    fb[0] = 0.0  # the DC bin carries no pitch information (tf.signal zeroes it too)
    return fb.astype(np.float32)


def _power_frames(signals: np.ndarray, params: MfccParams) -> np.ndarray:
    """Power spectra of a batch of equal-length signals (N, n) -> (N, frames, n_fft // 2 + 1)."""
    x = signals.astype(np.float64)
    if params.preemphasis:
        x = np.concatenate([x[:, :1], x[:, 1:] - params.preemphasis * x[:, :-1]], axis=1)
    if params.center:
        pad = params.win_length // 2
        x = np.pad(x, ((0, 0), (pad, pad)))
    window, _, _ = _tables(params)
    n_bins = params.n_fft // 2 + 1
    if x.shape[1] < params.win_length:
        return np.zeros((len(x), 0, n_bins))
    framed = np.lib.stride_tricks.sliding_window_view(x, params.win_length, axis=1)[:, :: params.hop_length]
    # the window sits at the start of an n_fft buffer (tf.signal's convention); where it sits
    # changes only the phase, so the power spectrum is the same as librosa's centred window
    spec = np.fft.rfft(framed * window, n=params.n_fft)
    return spec.real**2 + spec.imag**2


def _log_mel_batch(signals: np.ndarray, params: MfccParams) -> np.ndarray:
    _, fb, _ = _tables(params)
    power = _power_frames(signals, params)
    n, f, bins = power.shape
    # one matrix product for the whole batch: many small products each wake every BLAS thread,
    # which on a busy machine costs 20x the arithmetic
    mel = (power.reshape(n * f, bins) @ fb).reshape(n, f, fb.shape[1])
    return np.log(np.maximum(mel, params.log_floor))


def _signal_batch(signals: Any) -> np.ndarray:
    if isinstance(signals, np.ndarray) and signals.ndim == 2 and signals.dtype.kind == "f":
        return signals
    rows = [as_float_signal(s) for s in signals]
    if len({len(r) for r in rows}) > 1:
        raise DataError("a batch of signals must all have the same length: fit them with fix_length first")
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def log_mel(signal: np.ndarray, params: MfccParams | None = None) -> np.ndarray:
    """Natural-log mel power spectrogram, shape (frames, n_mels), float32.

    A signal shorter than one window gives zero frames; use fix_length for a fixed frame count."""
    params = params or MfccParams()
    return _log_mel_batch(as_float_signal(signal)[None], params)[0].astype(np.float32)


def mfcc(signal: np.ndarray, params: MfccParams | None = None) -> np.ndarray:
    """MFCCs, shape (frames, n_mfcc), float32: pre-emphasis, Hann STFT, HTK mel, log, DCT-II (ortho)."""
    return mfcc_batch(as_float_signal(signal)[None], params)[0]


def mfcc_batch(signals: Any, params: MfccParams | None = None, chunk: int = 64) -> np.ndarray:
    """`mfcc` of equal-length signals (N, n) at once -> (N, frames, n_mfcc), float32; the same
    numbers as one at a time, to float32 rounding, many times faster."""
    params = params or MfccParams()
    x = _signal_batch(signals)
    _, _, dct = _tables(params)
    parts = [
        (_log_mel_batch(x[i : i + chunk], params) @ dct).astype(np.float32) for i in range(0, len(x), chunk)
    ]
    frames_ = parts[0].shape[1] if parts else 0
    return np.concatenate(parts) if parts else np.zeros((0, frames_, params.n_mfcc), np.float32)
