"""Audio: clips of samples at the card's sample rate, made into MFCCs (`runtime/audio.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.runtime.audio import AudioSpec, audio_features
from edgekit.runtime.inputs import INPUT_KINDS, InputKind


class AudioInput(InputKind):
    name = "audio"

    def features(self, preprocess: Mapping[str, Any], raw: Any) -> np.ndarray:
        """A batch of raw clips -> normalised MFCCs (N, frames, n_mfcc), float32: what the model
        takes, in training, export validation and on the device."""
        return audio_features(preprocess, raw)

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Clips at the card's rate and length: one to three tones (audible band, below Nyquist)
        over noise at a random level, some near silence, so the MFCCs span quiet and loud, tonal
        and broadband. (N, clip samples) float32 in [-1, 1]."""
        spec = AudioSpec.from_dict(preprocess)
        rng = np.random.default_rng(seed)
        t = np.arange(spec.clip_samples) / spec.sample_rate
        top = min(4000.0, 0.45 * spec.sample_rate)
        clips = np.empty((n, spec.clip_samples), np.float32)
        for i in range(n):
            x = rng.normal(0.0, 10 ** rng.uniform(-4, -1), spec.clip_samples)
            for _ in range(rng.integers(1, 4)):
                freq, amp = rng.uniform(80.0, top), rng.uniform(0.0, 0.3)
                x += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            clips[i] = np.clip(x, -1.0, 1.0)
        return clips

    def blank(self, preprocess: Mapping[str, Any]) -> np.ndarray:
        """A clip of silence at the card's rate and length."""
        return np.zeros(AudioSpec.from_dict(preprocess).clip_samples, dtype=np.float32)


INPUT_KINDS.add(AudioInput())
