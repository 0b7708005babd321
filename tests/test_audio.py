"""Audio pre-processing: real WAV files written with the stdlib, resampling checked against the
exact sine it should give, MFCCs against TensorFlow's tf.signal and a slow loop-per-frame reference."""

from __future__ import annotations

import json
import math
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.audio import (
    AudioClip,
    AudioSpec,
    MfccParams,
    audio_features,
    clip_signal,
    fit_clip,
    fit_normalization,
    fix_length,
    frames,
    log_mel,
    mel_filterbank,
    mfcc,
    mfcc_batch,
    read_wav,
    read_wav_data,
    resample,
)
from edgekit.runtime.audio import write_wav as write_wav_file

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FULL_SCALE = {1: 128, 2: 2**15, 3: 2**23, 4: 2**31}


def write_wav(path: Path, ints: np.ndarray, rate: int, width: int) -> Path:
    """Write signed integer samples (n,) or (n, channels) as a PCM WAV with the stdlib."""
    ints = ints.reshape(len(ints), -1)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()  # 8-bit WAV is unsigned
    elif width == 3:
        raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        raw = ints.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ints.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def to_ints(x: np.ndarray, width: int) -> np.ndarray:
    full = FULL_SCALE[width]
    return np.clip(np.round(x * full), -full, full - 1).astype(np.int64)


# --- read_wav -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("width", [1, 2])
def test_read_wav_rates_channels_widths(tmp_path: Path, rate: int, channels: int, width: int) -> None:
    left = to_ints(sine(440, rate, 0.5), width)
    right = to_ints(sine(1000, rate, 0.5, amp=0.25), width)
    ints = left if channels == 1 else np.stack([left, right], axis=1)
    path = write_wav(tmp_path / "a.wav", ints, rate, width)

    signal, sr = read_wav(path)

    assert sr == rate
    assert signal.dtype == np.float32 and signal.shape == (len(left),)
    expected = left / FULL_SCALE[width] if channels == 1 else (left + right) / 2 / FULL_SCALE[width]
    np.testing.assert_allclose(signal, expected, atol=1e-7)
    assert np.abs(signal).max() <= 1.0


@pytest.mark.parametrize("width", [3, 4])
def test_read_wav_24_and_32_bit(tmp_path: Path, width: int) -> None:
    ints = to_ints(np.array([-1.0, -0.5, -1e-6, 0.0, 1e-6, 0.25, 0.999999]), width)
    signal, sr = read_wav(write_wav(tmp_path / "w.wav", ints, 16000, width))
    assert sr == 16000
    np.testing.assert_allclose(signal, ints / FULL_SCALE[width], atol=1e-7)
    assert signal[0] == -1.0  # the sign bit of the packed 24-bit sample survives


def test_read_wav_extremes_8_bit(tmp_path: Path) -> None:
    ints = np.array([-128, -1, 0, 1, 127])
    signal, _ = read_wav(write_wav(tmp_path / "e.wav", ints, 8000, 1))
    np.testing.assert_array_equal(signal, ints / 128.0)


def test_read_wav_truncated_data_keeps_whole_frames(tmp_path: Path) -> None:
    ints = np.stack([np.arange(100), -np.arange(100)], axis=1) * 100
    path = write_wav(tmp_path / "t.wav", ints, 16000, 2)
    path.write_bytes(path.read_bytes()[:-7])  # cut inside a stereo frame
    signal, _ = read_wav(path)
    assert len(signal) == 98
    np.testing.assert_allclose(signal, np.zeros(98), atol=1e-7)  # left + right cancel


def _float_wav(path: Path) -> Path:
    data = np.zeros(10, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(1000)),
        lambda p: p.write_text("this is a text file, not audio\n" * 10),
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(write_wav(p, np.zeros(100, int), 16000, 2).read_bytes()[:20]),
    ],
    ids=["random-bytes", "text", "empty", "header-cut"],
)
def test_read_wav_corrupt_raises_data_error(tmp_path: Path, make) -> None:
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError, match=f"cannot read {path} as a WAV file: "):
        read_wav(path)


def test_read_wav_missing_and_float_files_say_why(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(DataError, match="only integer PCM is supported"):
        read_wav(_float_wav(tmp_path / "float.wav"))


# --- resample -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst"),
    [(8000, 16000), (16000, 8000), (44100, 16000), (16000, 44100), (22050, 16000), (48000, 16000)],
)
def test_resample_keeps_frequency_and_amplitude(src: int, dst: int) -> None:
    y = resample(sine(440, src).astype(np.float32), src, dst)

    assert y.dtype == np.float32
    assert len(y) == math.ceil(src * dst / src) == dst
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) * dst / len(y) == pytest.approx(440, abs=1.0)
    # away from the ends (where the filter sees the zeros outside the signal) the result is
    # the sine sampled at the new rate, sample by sample
    mid = slice(dst // 10, -dst // 10)
    np.testing.assert_allclose(y[mid], sine(440, dst)[mid], atol=1e-4)
    assert np.abs(y[mid]).max() == pytest.approx(0.5, abs=1e-3)


def test_resample_removes_what_the_new_rate_cannot_hold() -> None:
    # 10 kHz is above 16 kHz's Nyquist: plain decimation would fold it to 6 kHz at full level
    y = resample(sine(10_000, 44100).astype(np.float32), 44100, 16000)
    mid = slice(1600, -1600)
    assert np.sqrt(np.mean(y[mid] ** 2)) < 0.5 / np.sqrt(2) * 1e-3  # below -60 dB
    # while 3 kHz, well inside the pass band, keeps its level within 0.1 dB
    z = resample(sine(3000, 44100).astype(np.float32), 44100, 16000)
    rms = np.sqrt(np.mean(z[mid] ** 2)) / (0.5 / np.sqrt(2))
    assert abs(20 * np.log10(rms)) < 0.1


def test_resample_edge_cases() -> None:
    x = np.arange(5, dtype=np.float32)
    same = resample(x, 16000, 16000)
    np.testing.assert_array_equal(same, x)
    assert same is not x
    assert resample(np.zeros(0, np.float32), 8000, 16000).shape == (0,)
    assert len(resample(np.ones(3, np.float32), 44100, 16000)) == 2  # ceil(3 * 160 / 441)
    with pytest.raises(ConfigError, match="from_rate"):
        resample(x, 0, 16000)
    with pytest.raises(DataError, match="mono 1-D"):
        resample(np.zeros((10, 2)), 8000, 16000)


def test_wav_to_features_end_to_end(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "cd.wav", to_ints(np.stack([sine(440, 44100)] * 2, 1), 2), 44100, 2)
    signal, sr = read_wav(path)
    feats = mfcc(fix_length(resample(signal, sr, 16000), 16000), MfccParams())
    assert feats.shape == (98, 13) and np.isfinite(feats).all()


# --- fix_length and frames ------------------------------------------------------------------


def test_fix_length() -> None:
    x = np.arange(1, 6, dtype=np.int16)
    np.testing.assert_array_equal(fix_length(x, 3), [1, 2, 3])
    np.testing.assert_array_equal(fix_length(x, 7), [1, 2, 3, 4, 5, 0, 0])
    assert fix_length(x, 7).dtype == np.int16
    assert len(fix_length(x, 5)) == 5 and len(fix_length(x, 0)) == 0
    with pytest.raises(ConfigError):
        fix_length(x, -1)


def _chunked(x: np.ndarray, sizes: list[int]):
    i, k = 0, 0
    while i < len(x):
        yield x[i : i + sizes[k % len(sizes)]]
        i += sizes[k % len(sizes)]
        k += 1


def test_frames_slide_over_a_chunked_stream() -> None:
    x = np.random.default_rng(1).uniform(-1, 1, 36_800).astype(np.float32)  # 2.3 s at 16 kHz
    got = list(frames(_chunked(x, [1000, 333, 4096, 17]), 16000, window_s=1.0, hop_s=0.25))

    full = 1 + (len(x) - 16000) // 4000  # 6 whole windows, then the tail zero-padded
    assert len(got) == full + 1
    for i, w in enumerate(got[:full]):
        np.testing.assert_array_equal(w, x[i * 4000 : i * 4000 + 16000])
    np.testing.assert_array_equal(got[-1], fix_length(x[full * 4000 :], 16000))
    assert all(w.dtype == np.float32 and w.shape == (16000,) for w in got)
    got[0][:] = 9  # windows overlap; each one must be its own copy
    assert got[1][0] == x[4000]


def test_frames_flush_short_stream_and_hop_gaps() -> None:
    short = np.ones(6400, np.float32)  # 0.4 s: no whole window
    (only,) = frames(short, 16000)
    np.testing.assert_array_equal(only, fix_length(short, 16000))
    assert list(frames(short, 16000, flush=False)) == []
    exact = np.ones(16000, np.float32)
    assert len(list(frames(exact, 16000, hop_s=0.5))) == 1  # nothing left over, nothing padded
    gaps = list(frames(np.arange(35, dtype=np.float32), 10, window_s=1.0, hop_s=1.5))
    assert [w[0] for w in gaps] == [0, 15, 30]  # hop longer than the window skips samples


def test_frames_mix_and_scale_int16_stereo_chunks() -> None:
    left = np.full(8000, 16384, np.int16)  # 0.5 full scale
    right = np.full(8000, -16384 // 2, np.int16)
    chunk = np.stack([left, right], axis=1)
    (w,) = frames([chunk, chunk], 16000)
    np.testing.assert_allclose(w, np.full(16000, (0.5 - 0.25) / 2), atol=1e-7)


# --- MFCC parameters ------------------------------------------------------------------------


def test_mfcc_params_card_round_trip() -> None:
    p = MfccParams(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, fmax=3800.0, center=True)
    d = json.loads(json.dumps(p.to_dict()))
    assert MfccParams.from_dict(d) == p
    assert MfccParams.from_dict(MfccParams().to_dict()).max_frequency == 8000.0


def test_mfcc_params_reject_unknown_keys_and_bad_values() -> None:
    d = MfccParams().to_dict() | {"n_mel": 40}
    with pytest.raises(DataError, match="unknown MFCC parameter.*'n_mel'"):
        MfccParams.from_dict(d)
    with pytest.raises(DataError, match="win_length 600 is longer than n_fft 512"):
        MfccParams.from_dict(MfccParams().to_dict() | {"win_length": 600})
    with pytest.raises(ConfigError, match="fmax"):
        MfccParams(fmax=9000.0)
    with pytest.raises(ConfigError, match="n_fft"):
        MfccParams(n_fft="512")  # type: ignore[arg-type]


# --- MFCC against references ----------------------------------------------------------------


def _test_signal(rate: int, seconds: float = 1.0) -> np.ndarray:
    # tones plus noise, so no mel band sits near the log floor where float32 rounding is magnified
    n = round(rate * seconds)
    noise = np.random.default_rng(2).standard_normal(n)
    return (sine(440, rate, seconds, 0.3) + sine(rate / 5.3, rate, seconds, 0.1) + 0.05 * noise).astype(
        np.float32
    )


TF_CASES = [
    MfccParams(preemphasis=0.0),
    MfccParams(preemphasis=0.97),
    MfccParams(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=26, fmin=60.0, fmax=3800.0),
    MfccParams(n_fft=1024, win_length=1024, hop_length=512, n_mels=64, n_mfcc=20, fmin=0.0),
]


@pytest.mark.parametrize("p", TF_CASES, ids=["plain", "preemphasis", "8k", "wide"])
def test_mfcc_matches_tf_signal(p: MfccParams) -> None:
    """tf.signal's pipeline (stft -> linear_to_mel_weight_matrix -> log -> mfccs) with matching settings.

    tf.signal has no pre-emphasis (applied to its input here) and no centring (center=False);
    its DCT scales every coefficient by sqrt(2/M), the orthonormal DCT-II scales c0 by sqrt(1/M),
    so tf's c0 is divided by sqrt(2). tf runs in float32, we in float64: the measured max
    difference is ~3e-5 on log-mel and MFCC values of magnitude ~10; the bar is 1e-3."""
    tf = pytest.importorskip("tensorflow")
    x = _test_signal(p.sample_rate)
    xe = np.concatenate([x[:1], x[1:] - p.preemphasis * x[:-1]]) if p.preemphasis else x

    stft = tf.signal.stft(xe, p.win_length, p.hop_length, p.n_fft, window_fn=tf.signal.hann_window)
    weights = tf.signal.linear_to_mel_weight_matrix(
        p.n_mels, p.n_fft // 2 + 1, p.sample_rate, p.fmin, p.max_frequency
    )
    tf_log_mel = tf.math.log(tf.maximum(tf.tensordot(tf.abs(stft) ** 2, weights, 1), p.log_floor))
    tf_mfcc = tf.signal.mfccs_from_log_mel_spectrograms(tf_log_mel)[:, : p.n_mfcc].numpy()
    tf_mfcc[:, 0] /= np.sqrt(2.0)

    # tf builds the filters in float32 (mel values ~3000 carry ~2e-4 rounding): ~1e-5 apart
    np.testing.assert_allclose(mel_filterbank(p), weights.numpy(), atol=1e-4)
    ours = log_mel(x, p)
    assert ours.shape == tuple(tf_log_mel.shape)
    np.testing.assert_allclose(ours, tf_log_mel.numpy(), atol=1e-3)
    np.testing.assert_allclose(mfcc(x, p), tf_mfcc, atol=1e-3)


def _slow_mfcc(x: np.ndarray, p: MfccParams) -> np.ndarray:
    """Textbook MFCC, one frame at a time, with scipy's DCT: the reference for center=True."""
    from scipy.fft import dct

    x = x.astype(np.float64)
    y = np.array([x[0]] + [x[i] - p.preemphasis * x[i - 1] for i in range(1, len(x))])
    if p.center:
        y = np.pad(y, p.win_length // 2)
    n_bins = p.n_fft // 2 + 1
    hann = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / p.win_length) for i in range(p.win_length)])

    def mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)  # HTK's formula; 1127 ln(.) is the same curve

    edges = np.linspace(mel(p.fmin), mel(p.max_frequency), p.n_mels + 2)
    fb = np.zeros((n_bins, p.n_mels))
    for b in range(1, n_bins):
        m = mel(b * p.sample_rate / p.n_fft)
        for j in range(p.n_mels):
            lo, c, hi = edges[j : j + 3]
            if lo < m <= c:
                fb[b, j] = (m - lo) / (c - lo)
            elif c < m < hi:
                fb[b, j] = (hi - m) / (hi - c)
    out = []
    for start in range(0, len(y) - p.win_length + 1, p.hop_length):
        buf = np.zeros(p.n_fft)
        buf[: p.win_length] = y[start : start + p.win_length] * hann
        power = np.abs(np.fft.fft(buf)[:n_bins]) ** 2
        log_mel_frame = np.log(np.maximum(power @ fb, p.log_floor))
        out.append(dct(log_mel_frame, type=2, norm="ortho")[: p.n_mfcc])
    return np.array(out)


@pytest.mark.parametrize("center", [False, True])
def test_mfcc_matches_slow_reference(center: bool) -> None:
    p = MfccParams(center=center)
    x = _test_signal(16000, 0.3)
    ref = _slow_mfcc(x, p)
    got = mfcc(x, p)
    assert got.shape == ref.shape == (1 + (len(x) - 400) // 160 if not center else 1 + len(x) // 160, 13)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_mfcc_shapes_and_inputs() -> None:
    p = MfccParams()
    one_second = _test_signal(16000)
    assert mfcc(one_second, p).shape == (98, 13)
    assert mfcc(one_second, MfccParams(center=True)).shape == (101, 13)
    assert log_mel(one_second, p).shape == (98, 40)
    assert mfcc(np.zeros(399, np.float32), p).shape == (0, 13)  # shorter than one window
    silence = mfcc(np.zeros(16000, np.float32), p)
    np.testing.assert_allclose(silence[:, 0], np.log(p.log_floor) * np.sqrt(p.n_mels), rtol=1e-6)
    pcm = (one_second * 32767).astype(np.int16)  # what a microphone delivers
    np.testing.assert_allclose(mfcc(pcm, p), mfcc(pcm / 32768.0, p), atol=1e-4)
    with pytest.raises(DataError, match="mono 1-D"):
        mfcc(np.zeros((16000, 2), np.float32), p)


# --- clips, the card's audio spec and the model's features ------------------------------------


def test_mfcc_batch_gives_each_clips_own_mfcc() -> None:
    rng = np.random.default_rng(5)
    clips = (rng.standard_normal((70, 16000)) * 0.1).astype(np.float32)  # more than one chunk of 64
    batch = mfcc_batch(clips, MfccParams())
    assert batch.shape == (70, 98, 13) and batch.dtype == np.float32
    for i in (0, 63, 64, 69):
        np.testing.assert_allclose(batch[i], mfcc(clips[i]), rtol=0, atol=1e-5)
    assert mfcc_batch(np.zeros((0, 16000), np.float32)).shape == (0, 0, 13)
    with pytest.raises(DataError, match="same length"):
        mfcc_batch([np.zeros(100), np.zeros(200)])


def test_audio_spec_card_round_trip_and_errors() -> None:
    spec = AudioSpec(mean=tuple(range(13)), std=(1.0,) * 13)
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["kind"] == "audio" and d["mfcc"]["n_mfcc"] == 13 and len(d["normalize"]["mean"]) == 13
    assert AudioSpec.from_dict(d) == spec
    assert spec.shape == (98, 13) and spec.clip_samples == 16000
    assert AudioSpec(mfcc=MfccParams(center=True)).frames == 101
    with pytest.raises(DataError, match="differs from the MFCC sample_rate"):
        AudioSpec.from_dict(d | {"sample_rate": 8000})
    with pytest.raises(DataError, match="std must hold 13 numbers"):
        AudioSpec.from_dict(d | {"normalize": {"mean": [0.0] * 13, "std": [1.0] * 12}})
    with pytest.raises(DataError, match="unknown MFCC parameter"):
        AudioSpec.from_dict(d | {"mfcc": d["mfcc"] | {"nfft": 1}})
    with pytest.raises(DataError, match="not an audio preprocess"):
        AudioSpec.from_dict({"kind": "image"})


def test_fit_clip_pads_or_keeps_the_loudest_stretch() -> None:
    x = np.zeros(30, np.float32)
    x[20:24] = 1.0
    assert fit_clip(x, 10).sum() == 4.0  # the loud part, whole, wherever it sits
    y = np.zeros(30, np.float32)
    y[2] = 5.0
    y[25:] = 1.0
    np.testing.assert_array_equal(fit_clip(y, 10), y[:10])  # one click outweighs a longer hum
    np.testing.assert_array_equal(fit_clip(x[:5], 8), np.concatenate([x[:5], np.zeros(3)]))


def test_clip_signal_resamples_mixes_and_scales() -> None:
    spec = AudioSpec()
    t44 = sine(440, 44100, 0.5).astype(np.float32)
    clip = clip_signal(AudioClip(t44, 44100), spec)
    assert clip.shape == (16000,) and clip.dtype == np.float32
    np.testing.assert_allclose(clip[800:7200], sine(440, 16000, 0.5)[800:7200], atol=1e-3)
    assert np.all(clip[8000:] == 0)  # half a second, padded to one
    stereo = np.stack([sine(440, 16000), np.zeros(16000)], axis=1)
    np.testing.assert_allclose(clip_signal(stereo, spec), sine(440, 16000) / 2, atol=1e-7)
    pcm = (sine(440, 16000) * 32767).astype(np.int16)
    np.testing.assert_allclose(clip_signal(pcm, spec), sine(440, 16000), atol=1e-4)


def test_audio_features_are_the_registered_kind_and_normalise() -> None:
    from edgekit.runtime.features import features

    rng = np.random.default_rng(1)
    clips = (rng.standard_normal((6, 16000)) * 0.1).astype(np.float32)
    spec = fit_normalization(clips, AudioSpec())
    x = features(spec.to_dict(), clips, (98, 13, 1))
    assert x.shape == (6, 98, 13, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(0, 1, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 1, 3)), 1.0, atol=1e-3)
    # one clip at a time, as a device does it: the same numbers as the batch
    for i in range(6):
        np.testing.assert_array_equal(audio_features(spec.to_dict(), [clips[i]])[0], x[i, ..., 0])


def test_write_wav_and_read_wav_data(tmp_path: Path) -> None:
    x = sine(440, 16000, 0.25).astype(np.float32)
    path = write_wav_file(tmp_path / "w.wav", np.concatenate([x, [1.5, -1.5]]), 16000)
    data = read_wav_data(path)
    assert (data.sample_rate, data.channels, len(data.signal)) == (16000, 1, len(x) + 2)
    assert np.abs(data.signal[: len(x)] - x).max() <= 1 / 32768
    assert data.signal[-2] == 32767 / 32768 and data.signal[-1] == -1.0  # beyond full scale: clipped
    stereo = write_wav(tmp_path / "s.wav", to_ints(np.stack([x, x], 1), 2), 16000, 2)
    assert read_wav_data(stereo).channels == 2
