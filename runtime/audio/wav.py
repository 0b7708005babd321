"""WAV files, read and written with the standard library alone: PCM 8/16/24/32-bit and float,
any channel count (mixed to mono), a header checked before any sample is read."""

from __future__ import annotations

import os
import stat
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DataError


@dataclass(frozen=True)
class WavData:
    """A WAV file's samples mixed down to mono, its rate, and how many channels it had."""

    signal: np.ndarray
    sample_rate: int
    channels: int


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an integer-PCM WAV file (8/16/24/32-bit, any channel count) as mono float32 in [-1, 1].

    Channels are mixed down by averaging. Returns (signal, sample_rate)."""
    wav = read_wav_data(path)
    return wav.signal, wav.sample_rate


# Real recordings run from 8 kHz telephone audio to 384 kHz studio files; a header claiming 4 Hz
# (a six-minute resample) or 4294967295 Hz (a 910 GiB resample buffer) is damaged or hostile.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
MAX_CHANNELS = 64
_MAX_FMT_CHUNK = 1024  # PCM's fmt chunk is 16 bytes, the extensible one 40


def _check_wav_header(path: Path) -> None:
    """Walk the RIFF chunks up to `data` reading only their headers: a fmt chunk claiming 0x7FFFFFFF
    bytes would make Python's `wave` read it whole. Anything else odd is left to `wave`."""
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise DataError(f"cannot read {path} as a WAV file: it is not a regular file")
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return  # `wave` says what is wrong in its own words
        size = os.fstat(f.fileno()).st_size
        for _ in range(64):  # a file of a thousand tiny chunks is not a recording
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                return
            if name == b"fmt " and length > _MAX_FMT_CHUNK:
                raise DataError(f"cannot read {path} as a WAV file: its fmt chunk claims {length} bytes")
            if length > size - f.tell():
                raise DataError(
                    f"cannot read {path} as a WAV file: a {name!r} chunk claims {length} bytes, "
                    "more than the file holds"
                )
            f.seek(length + (length & 1), os.SEEK_CUR)


def read_wav_data(path: str | Path) -> WavData:
    """`read_wav`, also saying how many channels the file had (a loader counts the mixed-down ones)."""
    try:
        _check_wav_header(Path(path))
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
                raise DataError(
                    f"cannot read {path} as a WAV file: sample rate {rate} Hz is outside "
                    f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
                )
            if not 1 <= channels <= MAX_CHANNELS:
                raise DataError(f"cannot read {path} as a WAV file: {channels} channels")
            # the header's frame count is a claim; readframes reads no more than the file holds
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise DataError(f"cannot read {path} as a WAV file: no such file") from None
    except (wave.Error, EOFError, struct.error, OSError, ValueError) as e:
        # Python 3.11's wave reads only WAVE_FORMAT_PCM (1): float (3) and extensible (65534)
        # files land here; say how to convert them instead of printing a format number.
        hint = ""
        if "unknown format" in str(e):
            hint = " (only integer PCM is supported: convert with `ffmpeg -i IN -c:a pcm_s16le OUT.wav`)"
        raise DataError(f"cannot read {path} as a WAV file: {e or type(e).__name__}{hint}") from None
    if width not in (1, 2, 3, 4):
        raise DataError(f"cannot read {path} as a WAV file: {8 * width}-bit samples are not supported")
    if rate <= 0:
        raise DataError(f"cannot read {path} as a WAV file: sample rate {rate}")
    frame_bytes = channels * width
    # a truncated data chunk ends mid-frame: keep the whole frames, drop the partial one
    raw = raw[: len(raw) - len(raw) % frame_bytes]
    samples = _pcm_to_float(raw, width).reshape(-1, channels)
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1, dtype=np.float64).astype(np.float32)
    return WavData(np.ascontiguousarray(mono, dtype=np.float32), rate, channels)


def write_wav(path: str | Path, signal: np.ndarray, sample_rate: int) -> Path:
    """Write a mono float signal in [-1, 1] as a 16-bit PCM WAV, atomically; values beyond clip."""
    import io

    from edgekit.fileio import write_bytes

    x = as_float_signal(signal)
    pcm = np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return write_bytes(Path(path), buf.getvalue())


def _pcm_to_float(raw: bytes, width: int) -> np.ndarray:
    # WAV stores 8-bit as unsigned with 128 as zero, wider samples as signed little-endian.
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if width == 3:
        # put the three bytes in the top of an int32 so the sign comes for free
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        wide = np.zeros((len(b), 4), np.uint8)
        wide[:, 1:] = b
        return (wide.view("<i4").ravel() / 2.0**31).astype(np.float32)
    return (np.frombuffer(raw, "<i4") / 2.0**31).astype(np.float32)


def as_float_signal(signal: Any, what: str = "signal") -> np.ndarray:
    """A 1-D float array; integer PCM (a microphone's int16) is scaled to [-1, 1]."""
    x = np.asarray(signal)
    if x.ndim != 1:
        raise DataError(f"{what} must be a mono 1-D array of samples, got shape {x.shape}")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        zero = (int(info.max) + 1) // 2 if x.dtype.kind == "u" else 0
        return ((x.astype(np.float64) - zero) / (int(info.max) + 1 - zero)).astype(np.float32)
    if x.dtype.kind != "f":
        raise DataError(f"{what} must hold numbers, got dtype {x.dtype}")
    return x
