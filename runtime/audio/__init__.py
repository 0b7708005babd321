"""Audio pre-processing, numpy only, one module per idea: WAV files (`wav`), resampling (`resample`),
framing a live stream (`framing`), MFCCs (`mfcc`), clips and the card's audio settings (`clips`).

Training and the device call these same functions, so what a model heard in training is what it
hears on the device. No TensorFlow and no scipy here: this module runs on a Raspberry Pi.
"""

from __future__ import annotations

from edgekit.runtime.audio.clips import (
    AudioClip,
    AudioSpec,
    audio_features,
    clip_mfcc,
    clip_signal,
    fit_clip,
    fit_normalization,
)
from edgekit.runtime.audio.framing import frames
from edgekit.runtime.audio.mfcc import MfccParams, log_mel, mel_filterbank, mfcc, mfcc_batch
from edgekit.runtime.audio.resample import fix_length, resample
from edgekit.runtime.audio.wav import WavData, read_wav, read_wav_data, write_wav

__all__ = [
    "AudioClip",
    "AudioSpec",
    "MfccParams",
    "WavData",
    "audio_features",
    "clip_mfcc",
    "clip_signal",
    "fit_clip",
    "fit_normalization",
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
