"""Spoken keywords synthesised with espeak-ng, in the Speech Commands layout.

One folder per class (the ten Speech Commands words, `_silence_` with noise only, `_unknown_` with
other words), 16 kHz mono 16-bit clips of one second, and `testing_list.txt` /
`validation_list.txt` naming the clips of voices held out of training, so accuracy is measured on
voices the model never heard. A voice is an espeak-ng English accent with a variant (+m1..+m7,
+f1..+f5, ...); every clip has its own speed, pitch, level, place in the second and background
noise (white, pink, brown or mains hum, made in numpy) at a random signal-to-noise ratio.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import DataError, MissingDependencyError
from edgekit.runtime.audio import read_wav, resample, write_wav
from edgekit.runtime.datasets.synth import GENERATORS, Generator

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# the Speech Commands auxiliary words, spoken as `_unknown_`
UNKNOWN_WORDS = (
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "learn",
    "follow",
    "forward",
    "backward",
    "visual",
)
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASSES = (*WORDS, SILENCE, UNKNOWN)

# espeak-ng's English accents (mbrola voices need a separate install, so none of those)
ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "croak")
VOICES = tuple(f"{a}+{v}" if v else a for a in ACCENTS for v in VARIANTS)

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050  # what espeak-ng writes; read from each file all the same
DEFAULT_COUNT = 2400  # 200 per class: about 30 s on two busy cores
HELD_OUT = {"testing": 0.15, "validation": 0.10}  # fractions of the voices, and of each class's clips
NOISES = ("white", "pink", "brown", "hum")


@dataclass(frozen=True)
class Utterance:
    """Everything random about one clip, drawn up front so a seed gives the same data on any
    number of threads."""

    index: int
    label: str
    word: str | None  # None: `_silence_`
    voice: str
    split: str  # training, validation or testing
    rate: int  # speaking rate, percent of the voice's own (SSML prosody rate)
    pitch: int  # pitch change, percent (SSML prosody pitch)
    peak_db: float  # the speech's peak level, dBFS
    snr_db: float  # speech-to-noise, dB; for `_silence_`, the noise level in dBFS
    noise: str
    noise_seed: int
    position: float  # where the word sits in the second: 0 at the start, 1 at the end


def espeak() -> str:
    """The espeak-ng executable, or a MissingDependencyError saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingDependencyError(
            "the kws generator speaks its words with espeak-ng, which is not installed: "
            "run `apt-get install espeak-ng` (or your system's package manager's equivalent)"
        )
    return exe


def voice_splits(seed: int) -> dict[str, tuple[str, ...]]:
    """Voices per split: a fixed share of the voices is held out for testing and validation."""
    order = [VOICES[i] for i in np.random.default_rng(seed).permutation(len(VOICES))]
    n_test = round(len(VOICES) * HELD_OUT["testing"])
    n_val = round(len(VOICES) * HELD_OUT["validation"])
    return {
        "testing": tuple(sorted(order[:n_test])),
        "validation": tuple(sorted(order[n_test : n_test + n_val])),
        "training": tuple(sorted(order[n_test + n_val :])),
    }


def plan(count: int, seed: int) -> list[Utterance]:
    """The clips to make: classes in turn (balanced), each class's clips split by a fixed pattern so
    even a few clips per class put some in every split, then a voice of that split."""
    rng = np.random.default_rng(seed)
    voices = voice_splits(seed)
    # 20 slots: 3 testing, 2 validation, 15 training (the HELD_OUT fractions); slot 0 trains and
    # slot 1 tests, so two clips per class already give both a training and a testing clip
    rest = ["testing"] * 2 + ["validation"] * 2 + ["training"] * 14
    pattern = ["training", "testing", *(rest[i] for i in rng.permutation(len(rest)))]
    out = []
    for i in range(count):
        label = CLASSES[i % len(CLASSES)]
        split = pattern[(i // len(CLASSES)) % len(pattern)]
        word = None if label == SILENCE else str(rng.choice(UNKNOWN_WORDS)) if label == UNKNOWN else label
        out.append(
            Utterance(
                index=i,
                label=label,
                word=word,
                voice=str(rng.choice(voices[split])),
                split=split,
                rate=int(rng.integers(70, 136)),
                pitch=int(rng.integers(-35, 36)),
                peak_db=float(rng.uniform(-18.0, -1.0)),
                snr_db=float(rng.uniform(-65.0, -25.0) if word is None else rng.uniform(8.0, 30.0)),
                noise=str(rng.choice(NOISES)),
                noise_seed=int(rng.integers(2**31)),
                position=float(rng.uniform()),
            )
        )
    return out


def speak(exe: str, voice: str, words: list[tuple[str, int, int]], tmp: Path, name: str) -> list[np.ndarray]:
    """Words (text, rate %, pitch %) spoken by one voice in one espeak-ng call, at SAMPLE_RATE,
    each trimmed of the silence around it. One call per voice, not per word: starting espeak-ng
    costs more than speaking a word."""
    path = tmp / f"{name}.wav"
    gap = 0.6  # seconds of silence between the words, where the recording is cut
    ssml = "".join(
        f'<s><prosody rate="{rate}%" pitch="{pitch:+d}%">{word}</prosody></s><break time="{gap * 1000:.0f}ms"/>'
        for word, rate, pitch in words
    )
    done = subprocess.run(
        [exe, "-m", "-v", voice, "-z", "-w", str(path), f"<speak>{ssml}</speak>"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or not path.exists():
        why = (done.stderr or done.stdout).strip().splitlines()
        raise DataError(f"espeak-ng could not speak as {voice}: {why[0] if why else 'no output'}")
    signal, rate = read_wav(path)
    path.unlink()
    pieces = split_on_silence(resample(signal, rate, SAMPLE_RATE), round(gap / 2 * SAMPLE_RATE))
    if len(pieces) != len(words):  # a word with a long pause inside: speak them one at a time
        if len(words) == 1:
            return [trim(np.concatenate(pieces)) if pieces else np.zeros(0, np.float32)]
        return [speak(exe, voice, [w], tmp, name)[0] for w in words]
    return [trim(p) for p in pieces]


def split_on_silence(x: np.ndarray, min_gap: int) -> list[np.ndarray]:
    """The stretches of `x` separated by at least `min_gap` samples below 1% of its peak."""
    loud = np.flatnonzero(np.abs(x) > 0.01 * (np.abs(x).max() or 1.0))
    if loud.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(loud) > min_gap)
    starts = np.concatenate([[loud[0]], loud[cuts + 1]])
    ends = np.concatenate([loud[cuts], [loud[-1]]])
    return [x[max(0, a - min_gap // 2) : b + min_gap // 2 + 1] for a, b in zip(starts, ends)]


def trim(x: np.ndarray, margin: int = 160) -> np.ndarray:
    """The part of `x` above 2% of its peak, with `margin` samples either side."""
    loud = np.flatnonzero(np.abs(x) > 0.02 * (np.abs(x).max() or 1.0))
    if loud.size == 0:
        return x[:0]
    return x[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of unit-RMS noise: white, pink (1/f power), brown (1/f^2) or 50/60 Hz mains hum."""
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        f0 = rng.choice([50.0, 60.0])
        x = sum(
            rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
            for h in range(1, 6)
        )
        x = x + 0.05 * rng.standard_normal(n)  # a hum is never alone on a line
    else:
        white = rng.standard_normal(n)
        if kind == "white":
            x = white
        else:
            spectrum = np.fft.rfft(white)
            f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)  # no DC, no endless drift
            spectrum /= np.sqrt(f) if kind == "pink" else f
            x = np.fft.irfft(spectrum, n)
    x = np.asarray(x, dtype=np.float64)
    return x / (np.sqrt(np.mean(x**2)) or 1.0)


def render(u: Utterance, speech: np.ndarray | None) -> np.ndarray:
    """One second: the word placed at its position and level, plus the background noise."""
    rng = np.random.default_rng(u.noise_seed)
    n = SAMPLE_RATE
    clip = np.zeros(n)
    if speech is None or speech.size == 0:
        level = 10 ** (u.snr_db / 20)  # `_silence_`: the noise's RMS, in dBFS
    else:
        s = speech[:n].astype(np.float64)
        s *= 10 ** (u.peak_db / 20) / (np.abs(s).max() or 1.0)
        start = round(u.position * (n - len(s)))
        clip[start : start + len(s)] = s
        rms = np.sqrt(np.mean(s**2))
        level = rms / 10 ** (u.snr_db / 20)
    clip += level * noise(u.noise, n, rng)
    peak = np.abs(clip).max()
    if peak > 0.99:  # loud noise on a loud word: scale down rather than clip
        clip *= 0.99 / peak
    return clip.astype(np.float32)


def file_name(u: Utterance, k: int) -> str:
    """`<label>/<voice>_nohash_<k>.wav`, as Speech Commands names a speaker's k-th take."""
    return f"{u.label}/{u.voice.replace('+', '-')}_nohash_{k}.wav"


def make_kws(folder: Path, count: int | None, seed: int) -> str:
    """Write the keyword clips and the held-out lists into `folder`; returns a one-line summary."""
    exe = espeak()
    count = DEFAULT_COUNT if count is None else count
    utterances = plan(count, seed)
    for label in CLASSES:
        (folder / label).mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    taken: dict[tuple[str, str], int] = {}
    for u in utterances:
        k = taken.get((u.label, u.voice), 0)
        taken[(u.label, u.voice)] = k + 1
        names.append(file_name(u, k))

    speech: dict[int, np.ndarray] = {}
    by_voice: dict[str, list[Utterance]] = {}
    for u in utterances:
        if u.word is not None:
            by_voice.setdefault(u.voice, []).append(u)
    with tempfile.TemporaryDirectory(prefix="edgekit-espeak-") as tmp:

        def one_voice(voice: str) -> None:
            group = by_voice[voice]
            said = speak(exe, voice, [(u.word, u.rate, u.pitch) for u in group], Path(tmp), voice)
            speech.update((u.index, s) for u, s in zip(group, said))

        # two workers: one espeak-ng process runs while the other thread resamples and splits
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(one_voice, sorted(by_voice)))
    for u in utterances:
        write_wav(folder / names[u.index], render(u, speech.get(u.index)), SAMPLE_RATE)

    lists = {split: sorted(n for u, n in zip(utterances, names) if u.split == split) for split in HELD_OUT}
    (folder / "testing_list.txt").write_text("".join(f"{n}\n" for n in lists["testing"]))
    (folder / "validation_list.txt").write_text("".join(f"{n}\n" for n in lists["validation"]))
    splits = voice_splits(seed)
    settings = {
        "generator": "edgekit data make kws",
        "seed": seed,
        "count": count,
        "sample_rate": SAMPLE_RATE,
        "classes": list(CLASSES),
        "unknown_words": list(UNKNOWN_WORDS),
        "voices": {k: list(v) for k, v in splits.items()},
        "clips": [asdict(u) | {"file": n} for u, n in zip(utterances, names)],
    }
    (folder / "generator.json").write_text(json.dumps(settings, indent=1))
    n_train = count - len(lists["testing"]) - len(lists["validation"])
    return (
        f"{count} one-second clips of {len(CLASSES)} classes from {len(VOICES)} espeak-ng voices at "
        f"{SAMPLE_RATE} Hz: {n_train} training, {len(lists['validation'])} validation and "
        f"{len(lists['testing'])} testing clips (the last two from {len(splits['validation'])} and "
        f"{len(splits['testing'])} voices held out of training)"
    )


GENERATORS.add(
    Generator(
        "kws",
        "spoken keywords (the Speech Commands words, _silence_, _unknown_) from espeak-ng voices with noise",
        make_kws,
        recipes=("kws", "kws-lstm"),
        needs="espeak-ng",
    ),
)
