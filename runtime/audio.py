"""Audio pre-processing, numpy only: WAV reading, resampling, framing a live stream, MFCCs.

Training and the device call these same functions, so what a model heard in training is what it
hears on the device. No TensorFlow and no scipy here: this module runs on a Raspberry Pi.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import stat
import struct
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError

__all__ = [
    "AudioClip",
    "AudioSpec",
    "MfccParams",
    "WavData",
    "audio_features",
    "clip_signal",
    "fit_clip",
    "fix_length",
    "frames",
    "log_mel",
    "mel_filterbank",
    "mfcc",
    "mfcc_batch",
    "read_wav",
    "read_wav_data",
    "resample",
    "write_wav",
]


# ---------------------------------------------------------------------------------------------
# Reading


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

    x = _as_float_signal(signal)
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


def _as_float_signal(signal: Any, what: str = "signal") -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# Resampling

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
    x = _as_float_signal(signal)
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
        c = _mix(c) if c.ndim == 2 else _as_float_signal(c, "an audio chunk")
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


def _mix(chunk: np.ndarray) -> np.ndarray:
    # scale each channel before averaging, so int16 stereo cannot overflow
    return np.mean([_as_float_signal(chunk[:, i], "an audio chunk") for i in range(chunk.shape[1])], axis=0)


# ---------------------------------------------------------------------------------------------
# MFCC


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
            if not _is_real(getattr(self, name)):
                raise ConfigError(f"MFCC parameter {name} must be a number, got {getattr(self, name)!r}")
        if self.fmax is not None and not _is_real(self.fmax):
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


def _is_real(v: Any) -> bool:
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
    rows = [_as_float_signal(s) for s in signals]
    if len({len(r) for r in rows}) > 1:
        raise DataError("a batch of signals must all have the same length: fit them with fix_length first")
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def log_mel(signal: np.ndarray, params: MfccParams | None = None) -> np.ndarray:
    """Natural-log mel power spectrogram, shape (frames, n_mels), float32.

    A signal shorter than one window gives zero frames; use fix_length for a fixed frame count."""
    params = params or MfccParams()
    return _log_mel_batch(_as_float_signal(signal)[None], params)[0].astype(np.float32)


def mfcc(signal: np.ndarray, params: MfccParams | None = None) -> np.ndarray:
    """MFCCs, shape (frames, n_mfcc), float32: pre-emphasis, Hann STFT, HTK mel, log, DCT-II (ortho)."""
    return mfcc_batch(_as_float_signal(signal)[None], params)[0]


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


# ---------------------------------------------------------------------------------------------
# Clips and the model's input


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
        if not _is_real(self.clip_seconds) or self.clip_seconds <= 0:
            raise ConfigError(f"audio clip_seconds must be a positive number, got {self.clip_seconds!r}")
        if self.frames < 1:
            raise ConfigError(
                f"a clip of {self.clip_seconds} s is shorter than one MFCC window ({self.mfcc.win_length} samples)"
            )
        if (self.mean is None) != (self.std is None):
            raise ConfigError("audio normalisation needs both mean and std, or neither")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and (len(v) != self.mfcc.n_mfcc or not all(_is_real(a) for a in v)):
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
        x = _as_float_signal(raw.samples, "an audio clip")
        if raw.sample_rate != spec.sample_rate:
            x = resample(x, int(raw.sample_rate), spec.sample_rate)
    else:
        a = np.asarray(raw)
        if a.dtype == object:  # a row of an object array of equal-length clips
            try:
                a = a.astype(np.float32)
            except (TypeError, ValueError):
                raise DataError(f"an audio clip must hold numbers, got {a.ravel()[:1]!r:.60}") from None
        x = _mix(a) if a.ndim == 2 else _as_float_signal(a, "an audio clip")
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
