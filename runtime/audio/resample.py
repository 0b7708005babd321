"""Changing a signal's sample rate (bandlimited interpolation) and fitting it to a length."""

from __future__ import annotations

import functools
import math

import numpy as np

from edgekit.errors import ConfigError
from edgekit.runtime.audio.wav import as_float_signal

# Kaiser-windowed sinc, the "bandlimited interpolation" of J. O. Smith (as resampy does): the
# low-pass sits at ROLLOFF of the lower Nyquist, NUM_ZEROS sinc zero-crossings each side. With
# beta 8.6 the stop band is about -86 dB and the transition band about 0.085 of the lower
# Nyquist wide (0.86..0.94), so nothing above Nyquist folds back audibly and a 16 kHz result
# is flat to about 6.8 kHz. Polyphase: each output sample reads one pre-computed filter phase.
_NUM_ZEROS = 64
_ROLLOFF = 0.9
_KAISER_BETA = 8.6


def resample(signal: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono signal with a Kaiser-windowed sinc low-pass (polyphase); float32 out.

    The result has ceil(len * to_rate / from_rate) samples and keeps the first sample's time."""
    x = as_float_signal(signal)
    for name, r in (("from_rate", from_rate), ("to_rate", to_rate)):
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r <= 0:
            raise ConfigError(f"resample {name} must be a positive integer, got {r!r}")
    if from_rate == to_rate or len(x) == 0:
        return np.array(x, dtype=np.float32)
    up, down, k, table = _resample_filter(int(from_rate), int(to_rate))
    n_out = -(-len(x) * up // down)
    xp = np.concatenate([np.zeros(k), x.astype(np.float64), np.zeros(k + 1)])
    windows = np.lib.stride_tricks.sliding_window_view(xp, 2 * k + 1)
    out = np.empty(n_out)
    # up and down are coprime, so outputs n, n + up, n + 2 up, ... share a phase and read
    # inputs down apart: each phase is one matrix-vector product over a strided input view
    for n0 in range(min(up, n_out)):
        b, phase = divmod(n0 * down, up)
        count = (n_out - 1 - n0) // up + 1
        out[n0::up] = windows[b : b + down * (count - 1) + 1 : down] @ table[phase]
    return out.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _resample_filter(from_rate: int, to_rate: int) -> tuple[int, int, int, np.ndarray]:
    """(up, down, half-width k, the filter taps of every phase (up, 2k + 1)), kept per rate pair:
    building the table costs more than filtering a one-second clip."""
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    cutoff = _ROLLOFF * min(1.0, up / down)  # fraction of the input Nyquist
    half = _NUM_ZEROS / cutoff  # filter half-width in input samples
    k = math.ceil(half)
    offsets = np.arange(-k, k + 1)
    tau = (np.arange(up) / up)[:, None] - offsets[None, :]  # distance from the output time to each tap
    u = np.clip(tau / half, -1.0, 1.0)
    table = cutoff * np.sinc(cutoff * tau) * np.i0(_KAISER_BETA * np.sqrt(1.0 - u * u)) / np.i0(_KAISER_BETA)
    table[np.abs(tau) > half] = 0.0
    table.flags.writeable = False
    return up, down, k, table


def fix_length(signal: np.ndarray, n: int) -> np.ndarray:
    """Trim the end of `signal`, or pad it with zeros at the end, to exactly `n` samples."""
    if n < 0:
        raise ConfigError(f"fix_length needs n >= 0, got {n}")
    x = np.asarray(signal)
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)])
