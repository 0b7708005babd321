"""Audio sources: wav files (one, or a folder or glob of them) and the microphone.

Items hold `AudioClip`s at the recording's own rate (the task resamples to its card's). A short
recording is one utterance, handed over whole, and is classified; a long one is cut into windows
of `WINDOW_S` seconds every `HOP_S` seconds, marked with the recording's name as their stream, for
the task's keyword detector. The microphone is live: a PortAudio callback fills a ring buffer on
its own thread and every hop the newest window is handed over (older ones a slow model did not
take are dropped, never queued)."""

from __future__ import annotations

import glob
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.errors import DataError, MissingDependencyError, SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind, SourceOptions
from edgekit.runtime.sources.live import Backoff, LiveSource

if TYPE_CHECKING:
    from edgekit.runtime.audio import AudioClip

WAV_SUFFIXES = (".wav", ".wave")
WINDOW_S = 1.0  # the keyword models' clip
HOP_S = 0.25
LONG_S = 1.5  # a recording longer than this is a stream of windows, not one utterance
MIC_RATE = 16000
_GLOB_CHARS = set("*?[")


class WavFiles(Source):
    """Each wav file whole (short ones) or as sliding windows (long ones); unreadable files are
    skipped and counted. `mixed` counts the files that had more than one channel."""

    kind = "audio"

    def __init__(
        self,
        paths: list[Path],
        origin: str,
        window_s: float = WINDOW_S,
        hop_s: float = HOP_S,
        long_s: float = LONG_S,
    ) -> None:
        super().__init__()
        if not paths:
            raise SourceError(f"no .wav files in {origin}")
        self.paths = paths
        self.window_s, self.hop_s, self.long_s = window_s, hop_s, long_s
        self.mixed = 0

    def __iter__(self) -> Iterator[Item]:
        # imported here: the sources registry loads this module to match any --source, images too
        from edgekit.runtime.audio import AudioClip, frames, read_wav_data

        index = 0
        for path in self.paths:
            try:
                wav = read_wav_data(path)
            except DataError as e:
                self.skip(str(e))
                continue
            self.mixed += wav.channels > 1
            rate = wav.sample_rate
            if len(wav.signal) / rate <= self.long_s:
                yield Item(AudioClip(wav.signal, rate), index, str(path), time.perf_counter())
                index += 1
                continue
            for k, window in enumerate(frames(wav.signal, rate, self.window_s, self.hop_s)):
                t = k * round(self.hop_s * rate) / rate
                clip = AudioClip(window, rate, t_start=t, stream=str(path))
                yield Item(clip, index, f"{path}@{t:.2f}s", time.perf_counter())
                index += 1


def is_wav(spec: str) -> bool:
    """A local .wav file name (not a URL, not a glob)."""
    return "://" not in spec and Path(spec).suffix.lower() in WAV_SUFFIXES and not _GLOB_CHARS & set(spec)


def _wav_paths(spec: str) -> list[Path]:
    if _GLOB_CHARS & set(spec):
        candidates = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
    else:
        candidates = sorted(p for p in Path(spec).rglob("*") if p.is_file())
    return [p for p in candidates if p.suffix.lower() in WAV_SUFFIXES]


def is_wav_collection(spec: str) -> bool:
    """A folder or glob whose files are wavs (and none of them an image or a video)."""
    if "://" in spec:
        return False
    if _GLOB_CHARS & set(spec):
        return Path(spec).suffix.lower() in WAV_SUFFIXES
    folder = Path(spec)
    if not folder.is_dir():
        return False
    suffixes = {p.suffix.lower() for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}
    audio = suffixes & set(WAV_SUFFIXES)
    # a folder of wavs may hold their lists and notes (testing_list.txt, README.md), not media
    return bool(audio) and not (suffixes - audio - {".txt", ".md", ".json", ".csv"})


def _open_wav(spec: str) -> Source:
    path = Path(spec)
    if not path.is_file():
        raise SourceError(f"wav file {path} does not exist")
    return WavFiles([path], spec)


def _open_wavs(spec: str) -> Source:
    return WavFiles(_wav_paths(spec), spec)


# ---- the microphone ----------------------------------------------------------------------------


def import_sounddevice() -> Any:
    """The `sounddevice` module, or a MissingDependencyError with the exact install line."""
    try:
        import sounddevice
    except ImportError:
        raise MissingDependencyError(
            'the microphone source needs sounddevice: run `pip install "edgekit[audio]"`'
        ) from None
    except OSError as e:  # the module is there but the PortAudio library is not
        raise MissingDependencyError(
            f"sounddevice cannot load PortAudio ({e}): run `apt-get install libportaudio2` "
            "(or your system's PortAudio package)"
        ) from None
    return sounddevice


class MicCapture:
    """A ring buffer that the audio callback fills; `read()` waits for the next hop and returns the
    newest window as an AudioClip. The shape of a `cv2.VideoCapture`, for LiveSource."""

    def __init__(self, rate: int, window_s: float = WINDOW_S, hop_s: float = HOP_S, timeout: float = 2.0):
        self.rate = rate
        self.window = round(window_s * rate)
        self.hop = round(hop_s * rate)
        self.timeout = timeout
        self._ring = np.zeros(self.window, np.float32)
        self._total = 0  # samples received since the start
        self._handed = 0  # the stream position of the last window handed over
        self._cond = threading.Condition()
        self._closed = False
        self.overflows = 0
        self.stream: Any = None  # the sounddevice InputStream, when one feeds this buffer

    def on_audio(self, indata: np.ndarray, frame_count: int, time_info: Any, status: Any) -> None:
        """The PortAudio callback: append a block of samples (frames, channels), mixed to mono."""
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        block = np.asarray(indata, dtype=np.float32)
        block = block.mean(axis=1) if block.ndim == 2 else block
        with self._cond:
            n = len(block)
            if n >= self.window:
                self._ring[:] = block[-self.window :]
            else:
                self._ring = np.roll(self._ring, -n)
                self._ring[-n:] = block
            self._total += n
            self._cond.notify_all()

    def read(self) -> tuple[bool, AudioClip | None]:
        """The newest full window once a hop of new samples has come; (False, None) if none comes."""
        from edgekit.runtime.audio import AudioClip

        with self._cond:
            due = max(self.window, self._handed + self.hop)
            if not self._cond.wait_for(lambda: self._closed or self._total >= due, self.timeout):
                return False, None
            if self._closed:
                return False, None
            self._handed = self._total
            start = (self._total - self.window) / self.rate
            return True, AudioClip(self._ring.copy(), self.rate, t_start=start, stream="mic")

    def release(self) -> None:
        """Wake a waiting read, then stop and close the audio stream."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.stream is not None:
            stream, self.stream = self.stream, None
            try:
                stream.stop()
            finally:
                stream.close()


def parse_mic(spec: str) -> int | None:
    """'mic' -> None (the default input device); 'mic:2' -> device 2."""
    if spec == "mic":
        return None
    tail = spec[len("mic:") :]
    if not tail.isdigit():
        raise SourceError(f"--source {spec}: give mic, or mic:N with N an input device number")
    return int(tail)


def open_mic_capture(device: int | None, rate: int = MIC_RATE) -> MicCapture:
    """A MicCapture fed by a sounddevice InputStream on `device` (None: the default input)."""
    sd = import_sounddevice()
    try:
        inputs = [d for d in sd.query_devices() if d.get("max_input_channels", 0) > 0]
    except Exception as e:  # PortAudio errors are plain exceptions
        raise SourceError(f"cannot list the audio devices ({e}): is a sound server running?") from None
    if not inputs:
        raise SourceError(
            "no microphone found: this machine has no audio input device; try --source word.wav"
        )
    try:
        info = sd.query_devices(device, "input")
        # ask for 16 kHz; a device that cannot do it records at its own rate, and the task resamples
        try:
            sd.check_input_settings(device=device, samplerate=rate, channels=1)
        except Exception:
            rate = int(info["default_samplerate"])
        capture = MicCapture(rate)
        stream = sd.InputStream(
            device=device, samplerate=rate, channels=1, dtype="float32", callback=capture.on_audio
        )
        stream.start()
    except Exception as e:
        which = "the default input" if device is None else f"input device {device}"
        raise SourceError(f"cannot open {which} for recording: {str(e).splitlines()[0]}") from None
    capture.stream = stream
    return capture


class Microphone(LiveSource):
    """One-second windows of the microphone every hop, newest first; reopened if the device goes."""

    kind = "audio"

    def __init__(self, spec: str, options: SourceOptions) -> None:
        device = parse_mic(spec)
        backoff = Backoff(give_up=options.reconnect)
        super().__init__(spec, lambda: open_mic_capture(device), fps=options.fps, backoff=backoff)


def _sounddevice_missing() -> str:
    from edgekit.deps import installed

    return "" if installed("sounddevice") else "pip install 'edgekit[audio]' (sounddevice, and libportaudio2)"


SOURCES.add(
    SourceKind(
        "wav",
        "a .wav file (a long recording is read as 1 s windows every 0.25 s)",
        is_wav,
        _open_wav,
        produces="audio",
    ),
)
SOURCES.add(
    SourceKind(
        "wavs",
        "a folder of .wav files (recursive) or a glob such as 'clips/*.wav'",
        is_wav_collection,
        _open_wavs,
        produces="audio",
    ),
)
SOURCES.add(
    SourceKind(
        "mic",
        "mic (or mic:N) for the microphone, through sounddevice",
        lambda s: s == "mic" or s.startswith("mic:"),
        Microphone,
        produces="audio",
        options=("fps", "reconnect"),
        missing=_sounddevice_missing,
    ),
)
