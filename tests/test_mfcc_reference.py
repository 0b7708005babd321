"""The MFCC against its definition, with the settings written here and nowhere else.

The course computes its speech features with `librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=13)`:
13 coefficients. The rest are the speech front end's usual settings, which edgekit's cards
carry: 16 kHz, 25 ms Hann windows every 10 ms in a 512-point FFT, pre-emphasis 0.97 (the HTK
book's, python_speech_features' default), 40 HTK-mel filters from 20 Hz to Nyquist, natural log
of the mel power with a floor of 1e-6, orthonormal DCT-II. Each step below is the textbook
formula, one frame at a time, so a constant moved by accident in edgekit (training and the device
share it, so they would still agree with each other) fails here. (tests/test_audio.py compares
the pipeline with tf.signal and a slow reference on the *same* parameters.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.runtime.audio import AudioSpec, MfccParams, fix_length, frames, log_mel, mel_filterbank, mfcc

pytestmark = pytest.mark.runtime_only  # numpy only: run on arm64 too

SAMPLE_RATE = 16_000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
PREEMPHASIS = 0.97
N_MELS = 40
F_MIN, F_MAX = 20.0, 8000.0
LOG_FLOOR = 1e-6
N_MFCC = 13  # the course: librosa.feature.mfcc(..., n_mfcc=13)


def speech_like(seconds: float = 1.0, seed: int = 3) -> np.ndarray:
    """A voiced sound: a 140 Hz fundamental with falling harmonics under three formants, plus
    breath noise, so every mel band from 20 Hz to 8 kHz holds energy well above the floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    pitch = 140 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    x = sum(
        (1 / k)
        * (1 + 3 * sum(math.exp(-(((k * 140 - f) / 120) ** 2)) for f in (700, 1200, 2600)))
        * np.sin(k * phase)
        for k in range(1, 50)
    )
    x = 0.1 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)  # HTK; edgekit writes it 1127 ln(1 + f / 700)


def reference_filterbank() -> np.ndarray:
    """Triangles linear in mel, peak 1, edges equally spaced in mel from F_MIN to F_MAX; the DC
    bin in none of them."""
    edges = np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2)
    fb = np.zeros((N_FFT // 2 + 1, N_MELS))
    for b in range(1, N_FFT // 2 + 1):
        m = hz_to_mel(b * SAMPLE_RATE / N_FFT)
        for j in range(N_MELS):
            lo, centre, hi = edges[j], edges[j + 1], edges[j + 2]
            if lo < m <= centre:
                fb[b, j] = (m - lo) / (centre - lo)
            elif centre < m < hi:
                fb[b, j] = (hi - m) / (hi - centre)
    return fb


def reference_mfcc(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel, MFCC) of a signal, frame by frame, by the formulas."""
    x = x.astype(np.float64)
    # pre-emphasis: y[n] = x[n] - 0.97 x[n - 1], the first sample kept
    y = [x[0]] + [x[n] - PREEMPHASIS * x[n - 1] for n in range(1, len(x))]
    # periodic Hann: w[n] = 0.5 - 0.5 cos(2 pi n / N)
    hann = [0.5 - 0.5 * math.cos(2 * math.pi * n / WINDOW) for n in range(WINDOW)]
    fb = reference_filterbank()
    logs, ceps = [], []
    for start in range(0, len(y) - WINDOW + 1, HOP):
        buf = np.zeros(N_FFT)
        buf[:WINDOW] = [y[start + n] * hann[n] for n in range(WINDOW)]
        spectrum = np.fft.fft(buf)[: N_FFT // 2 + 1]
        power = spectrum.real**2 + spectrum.imag**2
        log_energies = [math.log(max(float(power @ fb[:, j]), LOG_FLOOR)) for j in range(N_MELS)]
        # orthonormal DCT-II: c_k = s_k sum_m e_m cos(pi k (2m + 1) / 2M), s_0 = sqrt(1/M), else sqrt(2/M)
        c = [
            math.sqrt((1 if k == 0 else 2) / N_MELS)
            * sum(e * math.cos(math.pi * k * (2 * m + 1) / (2 * N_MELS)) for m, e in enumerate(log_energies))
            for k in range(N_MFCC)
        ]
        logs.append(log_energies)
        ceps.append(c)
    return np.array(logs), np.array(ceps)


@pytest.fixture(scope="module")
def voice() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = speech_like(0.5)
    return (x, *reference_mfcc(x))


def test_default_mfcc_is_the_definition_with_the_courses_settings(voice):
    x, ref_log_mel, ref_mfcc = voice
    got = mfcc(x)  # the defaults: what a card without audio settings means, and what the kws recipe writes
    assert got.shape == ref_mfcc.shape == (1 + (len(x) - WINDOW) // HOP, N_MFCC)
    # edgekit's float64 pipeline, returned as float32: equal to float32 rounding of values ~10-100
    np.testing.assert_allclose(got, ref_mfcc, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(log_mel(x), ref_log_mel, rtol=1e-5, atol=1e-4)


def test_default_filterbank_is_the_htk_mel_triangles():
    np.testing.assert_allclose(mel_filterbank(MfccParams()), reference_filterbank(), atol=1e-6)
    # each filter peaks near 1 at its centre and the triangles overlap halfway (each bin's weights
    # in two neighbouring filters add up to 1 between the first and the last centre)
    fb = reference_filterbank()
    edges = np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2)
    mels = np.array([hz_to_mel(b * SAMPLE_RATE / N_FFT) for b in range(N_FFT // 2 + 1)])
    inside = (mels >= edges[1]) & (mels <= edges[-2])
    np.testing.assert_allclose(fb[inside].sum(axis=1), 1.0, atol=1e-9)


def test_the_cards_default_audio_settings_are_the_reference_ones():
    """A card's audio settings default to the same front end, at one-second clips."""
    spec = AudioSpec()
    p = spec.mfcc
    assert (spec.sample_rate, spec.clip_seconds) == (SAMPLE_RATE, 1.0)
    assert (p.sample_rate, p.win_length, p.hop_length, p.n_fft) == (SAMPLE_RATE, WINDOW, HOP, N_FFT)
    assert (p.preemphasis, p.n_mels, p.fmin, p.max_frequency, p.n_mfcc) == (
        PREEMPHASIS,
        N_MELS,
        F_MIN,
        F_MAX,
        N_MFCC,
    )
    assert p.log_floor == LOG_FLOOR and p.center is False
    assert spec.frames == 1 + (SAMPLE_RATE - WINDOW) // HOP == 98


def test_silence_sits_on_the_log_floor_and_c0_carries_it():
    """Zeros give log(1e-6) in every band: c0 = sqrt(M) log(floor), the other coefficients 0."""
    got = mfcc(np.zeros(SAMPLE_RATE // 4, np.float32))
    np.testing.assert_allclose(got[:, 0], math.sqrt(N_MELS) * math.log(LOG_FLOOR), rtol=1e-6)
    np.testing.assert_allclose(got[:, 1:], 0.0, atol=1e-4)


def test_centred_frames_are_the_signal_padded_by_half_a_window(voice):
    """center=True: frame i is centred on sample i * hop, as if the signal had half a window of
    zeros each side (padded after pre-emphasis: only the very end differs from emphasising the
    padded signal, so the last frames are left out)."""
    x, _, _ = voice
    _, ref = reference_mfcc(np.pad(x.astype(np.float64), WINDOW // 2))
    got = mfcc(x, MfccParams(center=True))
    assert got.shape == ref.shape == (1 + len(x) // HOP, N_MFCC)
    np.testing.assert_allclose(got[:-3], ref[:-3], rtol=1e-5, atol=1e-4)


def test_a_stream_is_cut_into_one_second_windows_every_quarter_second():
    """frames(): window_s and hop_s in seconds; windows start at k * hop, the last one zero-padded."""
    x = np.arange(2 * SAMPLE_RATE + 1000, dtype=np.float32) / 1e5
    chunks = np.array_split(x, 7)  # a microphone's uneven chunks
    got = list(frames(chunks, SAMPLE_RATE))
    assert all(len(w) == SAMPLE_RATE for w in got)
    starts = [round(float(w[0]) * 1e5) for w in got]
    assert starts == [k * SAMPLE_RATE // 4 for k in range(len(got))]
    full = (len(x) - SAMPLE_RATE) // (SAMPLE_RATE // 4) + 1
    assert len(got) == full + 1  # the tail after the last full window comes out padded
    np.testing.assert_array_equal(got[-1], fix_length(x[full * SAMPLE_RATE // 4 :], SAMPLE_RATE))


def test_windows_end_exactly_at_the_stream_end_and_short_streams_still_give_one():
    # 1 s + 3 hops: the last full window ends on the last sample, nothing is left to flush
    x = np.ones(SAMPLE_RATE + 3 * SAMPLE_RATE // 4, np.float32)
    assert len(list(frames(x, SAMPLE_RATE))) == 4
    assert len(list(frames([x[:5000], x[5000:]], SAMPLE_RATE, flush=False))) == 4
    # a stream shorter than one window: one window, zero-padded (even of a single sample)
    (only,) = frames(np.array([0.5], np.float32), SAMPLE_RATE)
    assert len(only) == SAMPLE_RATE and only[0] == 0.5 and not only[1:].any()
    assert list(frames(np.array([0.5], np.float32), SAMPLE_RATE, flush=False)) == []
    # windows and hops of one sample are allowed; none of zero samples
    assert (
        len(list(frames(np.arange(3, dtype=np.float32), SAMPLE_RATE, 1 / SAMPLE_RATE, 1 / SAMPLE_RATE))) == 3
    )
    from edgekit.errors import ConfigError

    for window_s, hop_s in ((0.0, 0.25), (1.0, 0.0), (1e-6, 0.25), (1.0, 1e-6)):
        with pytest.raises(ConfigError, match="positive window and hop"):
            list(frames(x, SAMPLE_RATE, window_s, hop_s))


def test_stereo_int16_chunks_are_mixed_to_mono_floats():
    left = np.full(SAMPLE_RATE, 16384, np.int16)
    right = np.full(SAMPLE_RATE, -32768, np.int16)
    (window,) = frames(np.stack([left, right], axis=1), SAMPLE_RATE)
    np.testing.assert_allclose(window, (0.5 - 1.0) / 2, atol=1e-6)


def test_one_window_of_samples_gives_one_frame_and_batches_keep_their_count():
    assert mfcc(np.ones(WINDOW, np.float32)).shape == (1, N_MFCC)
    assert mfcc(np.ones(WINDOW - 1, np.float32)).shape == (0, N_MFCC)
    from edgekit.runtime.audio import mfcc_batch

    clips = np.stack([speech_like(0.1, seed) for seed in range(3)])
    for centred in (False, True):
        batch = mfcc_batch(clips, MfccParams(center=centred))
        assert batch.shape[0] == 3
        np.testing.assert_allclose(batch[2], mfcc(clips[2], MfccParams(center=centred)), atol=1e-5)


def test_the_cached_tables_cannot_be_written():
    """The window, filterbank and DCT are cached per settings and shared by every call: a caller
    that wrote into one would change every later MFCC."""
    from edgekit.runtime.audio.mfcc import _tables

    for table in _tables(MfccParams()):
        with pytest.raises(ValueError, match="read-only"):
            table[0] = 1.0
