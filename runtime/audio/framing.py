"""A live stream (a microphone, a long recording) cut into overlapping windows, each a clip the
model hears."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from edgekit.errors import ConfigError
from edgekit.runtime.audio.resample import fix_length
from edgekit.runtime.audio.wav import as_float_signal


def frames(
    chunks: Iterable[np.ndarray] | np.ndarray,
    sample_rate: int,
    window_s: float = 1.0,
    hop_s: float = 0.25,
    *,
    flush: bool = True,
) -> Iterator[np.ndarray]:
    """Yield float32 windows of `window_s` seconds every `hop_s` seconds from a stream of chunks.

    Chunks may be any length, int or float, 1-D or (samples, channels) as a microphone delivers
    them. With `flush`, samples left over at the end come out in one last zero-padded window."""
    win, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    if win <= 0 or hop <= 0:
        raise ConfigError(f"frames needs a positive window and hop, got {window_s} s and {hop_s} s")
    if isinstance(chunks, np.ndarray):
        chunks = [chunks]
    buf = np.zeros(0, np.float32)
    buf_start = 0  # stream index of buf[0]
    next_start = 0  # stream index where the next window begins
    covered = 0  # stream index up to which windows have been yielded
    total = 0
    for chunk in chunks:
        c = np.asarray(chunk)
        c = mix_to_mono(c) if c.ndim == 2 else as_float_signal(c, "an audio chunk")
        buf = np.concatenate([buf, c.astype(np.float32, copy=False)])
        total += len(c)
        while next_start + win <= total:
            lo = next_start - buf_start
            yield buf[lo : lo + win].copy()
            covered = next_start + win
            next_start += hop
        drop = min(next_start - buf_start, len(buf))  # nothing before next_start is needed again
        buf, buf_start = buf[drop:], buf_start + drop
    if flush and total > max(covered, next_start):
        yield fix_length(buf[next_start - buf_start :], win).astype(np.float32)


def mix_to_mono(chunk: np.ndarray) -> np.ndarray:
    # scale each channel before averaging, so int16 stereo cannot overflow
    return np.mean([as_float_signal(chunk[:, i], "an audio chunk") for i in range(chunk.shape[1])], axis=0)
