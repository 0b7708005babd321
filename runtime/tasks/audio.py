"""Audio classification and keyword spotting: MFCCs from the card, labels or keyword events out.

A whole clip (one wav, one utterance) gives the top-k `Classification`s. Windows of a stream (a
long recording, the microphone; `AudioClip.stream` set) go through a `KeywordDetector`: posteriors
averaged over a few windows, a threshold, and a refractory period, so one spoken word gives one
`KeywordEvent`. Labels that start with "_" (`_silence_`, `_unknown_`) never fire."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.audio import AudioClip, AudioSpec, audio_features
from edgekit.runtime.tasks import TASKS
from edgekit.runtime.tasks.classify import Classifier, softmax, top_k


@dataclass(frozen=True)
class KeywordEvent:
    """A keyword heard in a stream, between `t_start` and `t_end` seconds from its start."""

    label: str
    score: float
    t_start: float
    t_end: float
    index: int = -1  # the class index

    def to_dict(self) -> dict[str, Any]:
        """A JSON line's view of the event (times rounded to the millisecond)."""
        return {
            "event": "keyword",
            "label": self.label,
            "index": self.index,
            "score": round(self.score, 6),
            "t_start": round(self.t_start, 3),
            "t_end": round(self.t_end, 3),
        }


@dataclass(frozen=True)
class DetectorSettings:
    """How windows become events: posteriors averaged over `smooth` windows must reach `threshold`;
    after an event no other fires for `refractory` seconds, and the same word not until its score
    has dropped below the threshold again."""

    smooth: int = 3
    threshold: float = 0.7
    refractory: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The settings for the card's postprocess entry ("keywords")."""
        return {"smooth": self.smooth, "threshold": self.threshold, "refractory": self.refractory}

    @classmethod
    def from_dict(cls, d: Any) -> DetectorSettings:
        """Settings from the card (missing keys keep their defaults); bad ones raise DataError."""
        if not isinstance(d, dict) or set(d) - {"smooth", "threshold", "refractory"}:
            raise DataError(
                f"the card's keyword settings must be smooth, threshold and refractory, got {d!r:.80}"
            )
        try:
            return cls(**d)
        except (ConfigError, TypeError) as e:
            raise DataError(f"the card's keyword settings are malformed: {e}") from None

    def __post_init__(self) -> None:
        if not isinstance(self.smooth, int) or isinstance(self.smooth, bool):
            raise ConfigError(f"keyword smoothing takes a whole number of windows, got {self.smooth!r}")
        if self.smooth < 1:
            raise ConfigError(f"keyword smoothing needs at least 1 window, got {self.smooth}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"the keyword threshold must be in (0, 1], got {self.threshold}")
        if self.refractory < 0:
            raise ConfigError(f"the refractory period must be >= 0 s, got {self.refractory}")


class KeywordDetector:
    """Posteriors of successive windows in, at most one event per spoken word out. numpy only."""

    def __init__(self, labels: Sequence[str], settings: DetectorSettings | None = None) -> None:
        self.labels = list(labels)
        self.settings = settings or DetectorSettings()
        # background classes (_silence_, _unknown_) take part in the average but never fire
        self.fires = np.array([not str(label).startswith("_") for label in self.labels])
        self.reset()

    def reset(self) -> None:
        """Forget the stream: a new recording starts."""
        self._recent: deque[tuple[np.ndarray, float, float]] = deque(maxlen=self.settings.smooth)
        self._last_end = -np.inf  # t_end of the window that fired last
        self._armed = np.ones(len(self.labels), dtype=bool)

    def update(self, probs: np.ndarray, t_start: float, t_end: float) -> list[KeywordEvent]:
        """Add one window's class probabilities; returns the event it completes, if any."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.size != len(self.labels):
            raise DataError(f"the model gives {p.size} scores for {len(self.labels)} labels")
        self._recent.append((p, t_start, t_end))
        mean = np.mean([r[0] for r in self._recent], axis=0)
        # a word re-arms once its averaged score has fallen below the threshold
        self._armed |= mean < self.settings.threshold
        best = int(np.argmax(mean))
        score = float(mean[best])
        if (
            not self.fires[best]
            or score < self.settings.threshold
            or not self._armed[best]
            or t_end - self._last_end < self.settings.refractory
        ):
            return []
        self._armed[best] = False
        self._last_end = t_end
        # where the word is: the window of the average that scored it highest
        _, w_start, w_end = max(self._recent, key=lambda r: r[0][best])
        return [KeywordEvent(self.labels[best], score, w_start, w_end, best)]


@TASKS.register()
class ClassifyAudio(Classifier):
    """classify-audio: the card's MFCCs in; top-k labels for a clip, keyword events for a stream."""

    name = "classify-audio"
    dataset = "speech-commands"
    accepts = "audio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = AudioSpec.from_dict(self.card.preprocess)
        self._preprocess = self.spec.to_dict()
        info = self.inputs[0]
        self._shape = tuple(1 if s is None else s for s in info.shape)
        expected, got = int(np.prod(self._shape)), self.spec.frames * self.spec.mfcc.n_mfcc
        if expected != got:
            raise DataError(
                f"the card's MFCCs make {self.spec.frames}x{self.spec.mfcc.n_mfcc} values but the model "
                f"input {info.shape} takes {expected}"
            )
        self._activation = self.card.postprocess.get("activation", "softmax")
        settings = DetectorSettings.from_dict(dict(self.card.postprocess.get("keywords", {})))
        if self.options.conf is not None:  # --conf
            settings = dataclasses.replace(settings, threshold=self.options.conf)
        self.detector = KeywordDetector(self.card.labels, settings)
        self._stream: str | None = None
        self._window: tuple[float, float] | None = None  # the span of the window being processed

    def features(self, raw: Any) -> np.ndarray:
        """One clip (an AudioClip, or samples at the card's rate) -> the model's float input."""
        return audio_features(self._preprocess, [raw]).reshape(self._shape)

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        """A clip -> the model's feed; a stream's window also tells the detector where it is."""
        stream = raw.stream if isinstance(raw, AudioClip) else None
        if stream is not None:
            if stream != self._stream:  # a new recording: the last one's words are not this one's
                self.detector.reset()
            self._window = (raw.t_start, raw.t_end)
        else:
            self._window = None
        self._stream = stream
        return [self.feed(self.features(raw))]

    def probabilities(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities from the raw outputs, by the card's activation."""
        s = self.scores(outputs).reshape(-1)
        return softmax(s) if self._activation == "logits" else s

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Any]:
        """Top-k Classifications for a whole clip; for a stream's window, the KeywordEvent it completes."""
        p = self.probabilities(outputs)
        if self._window is not None:
            return self.detector.update(p, *self._window)
        return top_k(p, self.options.top_k, self.card.labels)
