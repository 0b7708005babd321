"""Keyword-spotting data: a class-per-folder directory of WAV files, the Speech Commands layout.

    DATA/yes/<speaker>_nohash_0.wav, DATA/no/..., DATA/_silence_/..., DATA/_unknown_/...
    DATA/testing_list.txt        (optional) the held-out clips, one `word/file.wav` a line

Clips are read with the runtime's own `read_wav`, mixed down to mono, resampled to 16 kHz and
fitted to one second with `fit_clip`, so training sees what the device computes. numpy only."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.audio import AudioSpec, fit_clip, read_wav_data, resample
from edgekit.runtime.datasets import DATASETS, Dataset, Split, split_off, stratified_heldout

SAMPLE_RATE = 16000
CLIP_SECONDS = 1.0
# Speech Commands keeps long noise recordings here, for mixing in; they are not a class
NOT_CLASSES = ("_background_noise_",)
LAYOUT = (
    "a folder with one sub-folder of .wav clips per word (the Speech Commands layout: yes/, no/, "
    "..., optionally testing_list.txt naming held-out clips as word/file.wav)"
)
HELDOUT_FRACTION = 0.2  # when there is no testing_list.txt


def _class_folders(root: Path) -> list[str]:
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_CLASSES
    )


def _read_list(path: Path) -> set[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    return {line.strip().replace("\\", "/") for line in lines if line.strip()}


def load_wav_folder(
    path: str | Path, name: str = "speech-commands", spec: AudioSpec | None = None
) -> Dataset:
    """Every .wav in `path`'s class folders as one-second 16 kHz clips, held out as testing_list.txt
    says (else a fixed stratified fifth of each class); unreadable files are skipped and counted."""
    spec = spec or AudioSpec(sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"--data {root} is not a folder: give {LAYOUT}")
    classes = _class_folders(root)
    if not classes:
        raise DataError(
            f"{root} holds no class folders: give {LAYOUT}; make one with `edgekit data make kws --out DIR`"
        )
    testing = _read_list(root / "testing_list.txt") if (root / "testing_list.txt").is_file() else None
    clips, labels, held, skipped, reasons = [], [], [], 0, []
    resampled, mixed = Counter(), 0
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
        if not files:
            raise DataError(f"class folder {root / cls} has no .wav files: add some or remove the folder")
        kept = 0
        for f in files:
            try:
                wav = read_wav_data(f)
            except DataError as e:
                skipped += 1
                reasons.append(str(e))
                continue
            signal = wav.signal
            if wav.sample_rate != spec.sample_rate:
                signal = resample(signal, wav.sample_rate, spec.sample_rate)
                resampled[wav.sample_rate] += 1
            mixed += wav.channels > 1
            clips.append(fit_clip(signal, spec.clip_samples).astype(np.float32))
            labels.append(label)
            held.append(testing is not None and f.relative_to(root).as_posix() in testing)
            kept += 1
        if kept == 0:
            raise DataError(f"class folder {root / cls} has no readable .wav files ({len(files)} corrupt)")
    x, y = np.stack(clips), np.asarray(labels, np.int64)
    if testing is not None:
        mask = np.asarray(held)
        if not mask.any():
            raise DataError(
                f"none of the clips named in {root / 'testing_list.txt'} is in {root}: its lines must "
                "read word/file.wav, relative to the folder"
            )
        # the held-out clips as listed; the rest, shuffled once, trains (validation_list.txt too:
        # early stopping watches its own slice of the training data)
        order = np.random.default_rng(1).permutation(np.flatnonzero(~mask))
        train, heldout = Split(x[order], y[order]), Split(x[mask], y[mask])
        how = f"held out: the {int(mask.sum())} clips in testing_list.txt"
    else:
        counts = np.bincount(y, minlength=len(classes))
        if counts.min() < 2:
            few = classes[int(counts.argmin())]
            raise DataError(f"class {few!r} in {root} has one clip: each class needs two or more")
        train, heldout = split_off(x, y, stratified_heldout(y, max(1, int(counts.min() * HELDOUT_FRACTION))))
        how = f"held out: a fixed {HELDOUT_FRACTION:.0%} of each class (no testing_list.txt)"
    notes = []
    if resampled:
        rates = ", ".join(f"{n} at {r} Hz" for r, n in sorted(resampled.items()))
        notes.append(f"{sum(resampled.values())} resampled to {spec.sample_rate} Hz ({rates})")
    if mixed:
        notes.append(f"{mixed} mixed down to mono")
    if skipped:
        notes.append(f"{skipped} unreadable skipped (first: {reasons[0]})")
    note = f"; {'; '.join(notes)}" if notes else ""
    return Dataset(
        name,
        str(root),
        f"{len(y)} clips of {len(classes)} classes from {root} ({how}){note}",
        tuple(classes),
        train,
        heldout,
        skipped=skipped,
    )


@DATASETS.register("speech-commands")
def speech_commands(data: str | None = None) -> Dataset:
    """A Speech Commands-style folder given with --data (the real one, or what `edgekit data make
    kws` writes)."""
    if data in (None, "", "auto"):
        raise DataError(
            f"keyword spotting needs --data: {LAYOUT}; make one with `edgekit data make kws --out kws-data` "
            "(spoken by espeak-ng) and pass --data kws-data"
        )
    return load_wav_folder(data)
