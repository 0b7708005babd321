"""Keyword spotting end to end: espeak-ng data, the Speech Commands loader, the kws recipes trained
for real, exported to TFLite and ONNX, and run on wav files through `edgekit run` with no TensorFlow
in the runtime path; the keyword detector on posteriors; the audio sources on wavs the tests write."""

from __future__ import annotations

import json
import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import DataError, MissingDependencyError, SourceError
from edgekit.runtime.audio import AudioClip, read_wav, write_wav

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_pcm(path: Path, x: np.ndarray, rate: int) -> Path:
    """Float samples (n,) or (n, channels) as 16-bit PCM, with the stdlib."""
    x = x.reshape(len(x), -1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes())
    return path


# --- the data generator ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def kws_data(tmp_path_factory) -> Path:
    """The generator's output, 80 clips a class (960 in all), made the way a user makes it."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("kws") / "data"
    result = cli("data", "make", "kws", "--out", str(out), "--count", "960")
    assert result.exit_code == 0, result.output
    assert "960 one-second clips of 12 classes" in result.output
    return out


@needs_espeak
@pytest.mark.runtime_only
def test_generator_writes_the_speech_commands_layout_with_held_out_voices(kws_data):
    from edgekit.runtime.datasets.synth.kws import CLASSES

    assert sorted(p.name for p in kws_data.iterdir() if p.is_dir()) == sorted(CLASSES)
    files = sorted(kws_data.rglob("*.wav"))
    assert len(files) == 960
    for f in files[::37]:
        with wave.open(str(f)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
                1,
                2,
                16000,
                16000,
            )
    testing = (kws_data / "testing_list.txt").read_text().split()
    validation = (kws_data / "validation_list.txt").read_text().split()
    assert all((kws_data / n).is_file() for n in testing + validation)
    voice = lambda name: name.split("/")[1].split("_nohash_")[0]  # noqa: E731
    training = {f.relative_to(kws_data).as_posix() for f in files} - set(testing) - set(validation)
    # the held-out clips are spoken by voices that training never hears
    assert {voice(n) for n in testing}.isdisjoint({voice(n) for n in training})
    assert {voice(n) for n in validation}.isdisjoint({voice(n) for n in training})
    assert {n.split("/")[0] for n in testing} == set(CLASSES)  # every class is tested
    assert 0.1 < len(testing) / 960 < 0.2
    # a word is loud against its noise; `_silence_` is noise alone, well below speech
    level = lambda label: np.mean([np.abs(read_wav(f)[0]).max() for f in (kws_data / label).glob("*.wav")])  # noqa: E731
    assert level("yes") > 5 * level("_silence_")
    settings = json.loads((kws_data / "generator.json").read_text())
    assert settings["seed"] == 0 and len(settings["clips"]) == 960


@needs_espeak
@pytest.mark.runtime_only
def test_generator_is_reproducible_and_varies_its_clips(tmp_path):
    from edgekit.runtime.datasets.synth import make

    make("kws", tmp_path / "a", count=24, seed=3)
    make("kws", tmp_path / "b", count=24, seed=3)
    make("kws", tmp_path / "c", count=24, seed=4)
    a = sorted((tmp_path / "a").rglob("*.wav"))
    assert [p.read_bytes() for p in a] == [
        (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes() for p in a
    ]
    assert {p.relative_to(tmp_path / "a") for p in a} != {
        p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*.wav")
    }
    # two takes of the same word differ (voice, speed, pitch, place in the second, noise)
    yes = [read_wav(p)[0] for p in sorted((tmp_path / "a" / "yes").glob("*.wav"))]
    assert len(yes) == 2 and not np.allclose(yes[0], yes[1], atol=1e-2)


@pytest.mark.runtime_only
def test_generator_without_espeak_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on this PATH
    result = cli("data", "make", "kws", "--out", str(tmp_path / "out"), "--count", "12")
    assert result.exit_code == 1
    assert "apt-get install espeak-ng" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# --- the loader -----------------------------------------------------------------------------


@needs_espeak
@pytest.mark.runtime_only
def test_loader_holds_out_the_testing_list(kws_data):
    from edgekit.runtime.datasets import load_dataset

    ds = load_dataset("speech-commands", str(kws_data))
    testing = (kws_data / "testing_list.txt").read_text().split()
    assert len(ds.heldout) == len(testing) and len(ds.train) == 960 - len(testing)
    assert ds.labels == tuple(sorted(p.name for p in kws_data.iterdir() if p.is_dir()))
    assert ds.train.x.shape[1:] == (16000,) and ds.train.x.dtype == np.float32
    # the held-out clips are exactly the listed files, read the runtime's way
    first = sorted(testing)[0]
    want, _ = read_wav(kws_data / first)
    label = ds.labels.index(first.split("/")[0])
    assert any(np.array_equal(x, want) for x, y in zip(ds.heldout.x, ds.heldout.y) if y == label)
    assert "testing_list.txt" in ds.description


def _word_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for word in ("yes", "no"):
        (root / word).mkdir(parents=True)
        for i in range(5):
            write_pcm(root / word / f"s{i}_nohash_0.wav", rng.normal(0, 0.1, 16000), 16000)
    return root


@pytest.mark.runtime_only
def test_loader_resamples_mixes_down_skips_and_counts(tmp_path):
    from edgekit.runtime.datasets.audio import load_wav_folder

    root = _word_folder(tmp_path / "d")
    write_pcm(root / "yes" / "cd.wav", np.stack([tone(44100, 1.0)] * 2, 1), 44100)  # stereo, 44.1 kHz
    write_pcm(root / "no" / "phone.wav", tone(8000, 1.2), 8000)  # 8 kHz, longer than a second
    write_pcm(root / "no" / "short.wav", tone(16000, 0.3), 16000)
    (root / "no" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "_background_noise_").mkdir()  # Speech Commands' noise folder is not a class
    write_pcm(root / "_background_noise_" / "hum.wav", tone(16000, 3.0, 50), 16000)

    ds = load_wav_folder(root)
    assert ds.labels == ("no", "yes") and len(ds.train) + len(ds.heldout) == 13
    assert ds.skipped == 1
    for words in (
        "2 resampled to 16000 Hz (1 at 8000 Hz, 1 at 44100 Hz)",
        "1 mixed down to mono",
        "1 unreadable",
    ):
        assert words in ds.description
    x = np.concatenate([ds.train.x, ds.heldout.x])
    assert x.shape == (13, 16000)
    # the 44.1 kHz stereo tone arrives as the same tone at 16 kHz; the short clip is zero-padded
    tone_row = x[np.argmin([np.abs(r - tone(16000, 1.0)).max() for r in x])]
    np.testing.assert_allclose(tone_row[1000:-1000], tone(16000, 1.0)[1000:-1000], atol=2e-3)
    assert any(np.all(r[4800:] == 0) and np.abs(r[:4800]).max() > 0.2 for r in x)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda root: root.mkdir(), "holds no class folders: give a folder with one sub-folder"),
        (lambda root: (root / "yes").mkdir(parents=True), "has no .wav files: add some"),
        (lambda root: None, "is not a folder: give a folder with one sub-folder"),
    ],
    ids=["empty", "empty-class", "missing"],
)
@pytest.mark.runtime_only
def test_loader_says_what_layout_it_wants(tmp_path, make, words):
    root = tmp_path / "data"
    make(root)
    result = cli("train", "kws", "--data", str(root), "--out", str(tmp_path / "run"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert words in " ".join(result.output.split())


@pytest.mark.runtime_only
def test_loader_without_data_names_the_generator():
    from edgekit.runtime.datasets import load_dataset

    with pytest.raises(DataError, match="edgekit data make kws"):
        load_dataset("speech-commands")


@pytest.mark.runtime_only
def test_loader_all_corrupt_class_is_an_error(tmp_path):
    from edgekit.runtime.datasets.audio import load_wav_folder

    root = _word_folder(tmp_path / "d")
    (root / "maybe").mkdir()
    (root / "maybe" / "a.wav").write_text("not audio")
    with pytest.raises(DataError, match="no readable .wav files"):
        load_wav_folder(root)


# --- the keyword detector -------------------------------------------------------------------

LABELS = ("_silence_", "_unknown_", "yes", "no")


def posteriors(track: list[str], sure: float = 0.95) -> list[np.ndarray]:
    out = []
    for label in track:
        p = np.full(len(LABELS), (1 - sure) / (len(LABELS) - 1))
        p[LABELS.index(label)] = sure
        out.append(p)
    return out


def detect(track: list[str], hop: float = 0.25, **settings) -> list:
    from edgekit.runtime.tasks.audio import DetectorSettings, KeywordDetector

    det = KeywordDetector(LABELS, DetectorSettings(**settings))
    events = []
    for i, p in enumerate(posteriors(track)):
        events += det.update(p, i * hop, i * hop + 1.0)
    return events


@pytest.mark.runtime_only
def test_one_word_gives_one_event_however_many_windows_hear_it():
    quiet = ["_silence_"] * 4
    events = detect(quiet + ["yes"] * 6 + quiet)
    assert [e.label for e in events] == ["yes"]
    e = events[0]
    assert 1.0 <= e.t_start < e.t_end <= 3.5 and e.score > 0.7
    assert e.to_dict() == {
        "event": "keyword",
        "label": "yes",
        "index": 2,
        "score": round(e.score, 6),
        "t_start": round(e.t_start, 3),
        "t_end": round(e.t_end, 3),
    }


@pytest.mark.runtime_only
def test_two_words_apart_give_two_events_and_background_never_fires():
    quiet = ["_silence_"] * 6
    events = detect(quiet + ["yes"] * 5 + quiet + ["no"] * 5 + ["_unknown_"] * 8 + quiet)
    assert [e.label for e in events] == ["yes", "no"]
    assert events[1].t_start > events[0].t_end
    assert detect(["_unknown_"] * 10 + ["_silence_"] * 10) == []


@pytest.mark.runtime_only
def test_smoothing_ignores_a_one_window_blip_and_refractory_holds():
    quiet = ["_silence_"] * 4
    assert detect(quiet + ["yes"] + quiet) == []  # averaged over 3 windows: 0.32, below 0.7
    assert [e.label for e in detect(quiet + ["yes"] + quiet, smooth=1)] == ["yes"]
    # "yes" fires 1 s after "no" (each needs three windows of the average): held back by a
    # refractory period longer than that, let through by a shorter one
    track = quiet + ["no"] * 4 + ["yes"] * 4 + quiet
    assert [e.label for e in detect(track, refractory=1.5)] == ["no"]
    assert [e.label for e in detect(track, refractory=1.0)] == ["no", "yes"]
    # a word held for long is one event: it must fall below the threshold before it fires again
    assert [e.label for e in detect(quiet + ["yes"] * 20 + quiet, refractory=0.0)] == ["yes"]


@pytest.mark.runtime_only
def test_detector_settings_from_the_card_are_checked():
    from edgekit.runtime.tasks.audio import DetectorSettings

    assert DetectorSettings.from_dict({"threshold": 0.5}) == DetectorSettings(threshold=0.5)
    with pytest.raises(DataError, match="smooth, threshold and refractory"):
        DetectorSettings.from_dict({"thresh": 0.5})
    with pytest.raises(DataError, match=r"threshold must be in \(0, 1\]"):
        DetectorSettings.from_dict({"threshold": 0})
    with pytest.raises(DataError, match="whole number of windows"):
        DetectorSettings.from_dict({"smooth": 2.5})


# --- the sources ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.runtime_only
def test_wav_source_hands_over_clips_at_their_own_rate(tmp_path, rate, channels):
    from edgekit.runtime.audio import AudioSpec, clip_signal
    from edgekit.runtime.sources import open_source, source_kind

    x = tone(rate, 0.8)
    path = write_pcm(tmp_path / "word.wav", np.stack([x] * channels, 1) if channels == 2 else x, rate)
    assert source_kind(str(path)).produces == "audio"
    with open_source(str(path)) as src:
        (item,) = list(src)
    assert isinstance(item.data, AudioClip) and item.data.sample_rate == rate and item.data.stream is None
    assert src.mixed == (channels == 2)
    np.testing.assert_allclose(item.data.samples, x, atol=1 / 32767)
    # the task's clip: at the card's 16 kHz, one second, the tone unchanged
    clip = clip_signal(item.data, AudioSpec())
    assert clip.shape == (16000,)
    np.testing.assert_allclose(clip[1000:11000], tone(16000, 0.8)[1000:11000], atol=2e-3)


@pytest.mark.runtime_only
def test_long_wav_and_wav_folder_sources(tmp_path):
    from edgekit.runtime.sources import open_source, source_kind

    (tmp_path / "talk").mkdir()
    long = write_pcm(tmp_path / "talk" / "long.wav", tone(16000, 3.0), 16000)
    write_pcm(tmp_path / "talk" / "a.wav", tone(8000, 1.0), 8000)
    (tmp_path / "talk" / "testing_list.txt").write_text("a.wav\n")
    (tmp_path / "talk" / "bad.wav").write_text("not a wav")
    with open_source(str(long)) as src:
        items = list(src)
    # 3 s in 1 s windows every 0.25 s: 9 windows, the last ending with the recording
    assert len(items) == 9
    assert [i.data.t_start for i in items[:3]] == [0.0, 0.25, 0.5]
    assert all(i.data.stream == str(long) and len(i.data.samples) == 16000 for i in items)
    assert source_kind(str(tmp_path / "talk")).name == "wavs"
    assert source_kind(str(tmp_path / "talk" / "*.wav")).name == "wavs"
    with open_source(str(tmp_path / "talk")) as src:
        items = list(src)
    assert src.skipped == 1 and "bad.wav" in src.skip_reasons[0]
    assert len([i for i in items if i.data.stream is None]) == 1  # a.wav, whole
    # a folder of images is still the image source's
    import cv2

    (tmp_path / "pics").mkdir()
    cv2.imwrite(str(tmp_path / "pics" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert source_kind(str(tmp_path / "pics")).name == "images"
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "nope.wav"))


@pytest.mark.runtime_only
def test_mic_without_sounddevice_names_the_pip_line():
    from edgekit.runtime.sources import open_source

    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        pass
    else:
        pytest.skip("sounddevice is installed here")
    with pytest.raises(MissingDependencyError, match=r'pip install "edgekit\[audio\]"'):
        open_source("mic")
    with pytest.raises(SourceError, match="mic:N"):
        open_source("mic:x")


@pytest.mark.runtime_only
def test_mic_capture_hands_over_the_newest_window_every_hop():
    """The ring buffer behind `--source mic`, fed blocks the way PortAudio's callback delivers them
    (on another thread), read through the same LiveSource that serves cameras."""
    import threading
    import time

    from edgekit.runtime.sources.audio import MicCapture
    from edgekit.runtime.sources.live import LiveSource

    rate = 1000
    capture = MicCapture(rate, window_s=1.0, hop_s=0.25, timeout=1.0)
    stream = np.arange(4000, dtype=np.float32)  # 4 s, each sample its own index

    def feed() -> None:
        for i in range(0, len(stream), 100):  # 0.1 s blocks, (frames, channels) as PortAudio gives
            capture.on_audio(stream[i : i + 100, None], 100, None, None)
            time.sleep(0.002)

    src = LiveSource("mic", lambda: capture, ends=True)
    feeder = threading.Thread(target=feed)
    feeder.start()
    items = []
    for item in src:
        items.append(item.data)
        time.sleep(0.05)  # a slow model: some windows are replaced before it takes them
    feeder.join()
    src.close()
    assert items, "no window came"
    for clip in items:
        start = round(clip.t_start * rate)
        # every window is a whole, contiguous second of the stream, in order
        np.testing.assert_array_equal(clip.samples, stream[start : start + 1000])
        assert clip.stream == "mic" and clip.sample_rate == rate
    assert [c.t_start for c in items] == sorted(c.t_start for c in items)
    assert src.read == src.taken + src.dropped


def test_model_and_source_kinds_must_match(tmp_path, trained):
    wav = write_pcm(tmp_path / "word.wav", tone(16000, 1.0), 16000)
    result = cli("run", str(trained), "--source", str(wav))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "takes image" in result.output and "gives audio" in result.output


@pytest.mark.runtime_only
def test_write_wav_round_trips(tmp_path):
    x = tone(16000, 0.5)
    path = write_wav(tmp_path / "t.wav", x, 16000)
    y, rate = read_wav(path)
    assert rate == 16000 and np.abs(y - x).max() <= 1 / 32768
    assert os.stat(path).st_size == 44 + 2 * len(x)


# --- trained for real, exported, run --------------------------------------------------------


@pytest.fixture(scope="session")
def kws_model(kws_data, tmp_path_factory) -> Path:
    """`kws` as the recipe has it, trained for 12 epochs on the 960 generated clips (about 90% on the
    held-out voices), exported to TFLite and ONNX with `edgekit export`, each validated against
    Keras on the held-out clips."""
    from edgekit.models.train import train

    out = tmp_path_factory.mktemp("kws-model")
    result = train("kws", out, data=str(kws_data), epochs=12, batch_size=32, quiet=True)
    assert result.card.metrics["heldout_accuracy"] > 0.7, result.card.metrics  # chance is 1/12
    for fmt in ("tflite", "onnx"):
        done = cli("export", str(out / "model.keras"), "--to", fmt)
        assert done.exit_code == 0, done.output
    return out / "model.keras"


@needs_espeak
def test_card_carries_the_mfcc_settings_and_the_fitted_normalisation(kws_model, kws_data):
    from edgekit.card import ModelCard
    from edgekit.runtime.audio import AudioSpec, MfccParams, clip_mfcc
    from edgekit.runtime.datasets import load_dataset

    card = ModelCard.load(kws_model.parent / "card.json")
    spec = AudioSpec.from_dict(card.preprocess)
    assert card.preprocess["kind"] == "audio" and card.task == "classify-audio"
    assert (spec.sample_rate, spec.clip_seconds, spec.mfcc) == (16000, 1.0, MfccParams())
    assert list(card.input.shape) == [None, 98, 13, 1]
    assert card.postprocess["keywords"] == {"smooth": 3, "threshold": 0.7, "refractory": 1.0}
    # the normalisation is the statistics of the clips training fits on (the validation and held-out
    # parts take no part)
    train = load_dataset("speech-commands", str(kws_data)).fit
    raw = clip_mfcc(train.x, spec).astype(np.float64)
    np.testing.assert_allclose(spec.mean, raw.mean(axis=(0, 1)), rtol=1e-9)
    np.testing.assert_allclose(spec.std, raw.std(axis=(0, 1)), rtol=1e-9)


@needs_espeak
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_runtime_features_equal_the_training_features_on_real_wavs(kws_model, kws_data, fmt):
    """The device path (wav file -> source -> task.preprocess) gives the numbers training used."""
    from edgekit.card import ModelCard
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.sources import open_source

    card = ModelCard.load(kws_model.parent / "card.json")
    ds = load_dataset("speech-commands", str(kws_data))
    trained_on = card_inputs(card, ds.heldout)  # what training and export validation computed
    names = sorted((kws_data / "testing_list.txt").read_text().split())
    with Predictor(kws_model.with_suffix(f".{fmt}")) as predictor:
        for name in names[:: len(names) // 6]:
            with open_source(str(kws_data / name)) as src:
                (item,) = list(src)
            (fed,) = predictor.task.preprocess(item.data)
            label = ds.labels.index(name.split("/")[0])
            rows = [i for i, y in enumerate(ds.heldout.y) if y == label]
            match = [i for i in rows if np.array_equal(trained_on[i], fed[0])]
            assert match, f"{name}: the runtime's features differ from every training row of its class"


@needs_espeak
def test_run_classifies_a_wav_and_a_folder_at_any_rate(kws_model, kws_data, tmp_path):
    model = kws_model.with_suffix(".tflite")
    name = next(
        n for n in sorted((kws_data / "testing_list.txt").read_text().split()) if n.startswith("yes/")
    )
    word, _ = read_wav(kws_data / name)
    folder = tmp_path / "takes"
    folder.mkdir()
    write_pcm(folder / "a_16k.wav", word, 16000)
    write_pcm(folder / "b_44k_stereo.wav", np.stack([resample_to(word, 44100)] * 2, 1), 44100)
    write_pcm(folder / "c_8k.wav", resample_to(word, 8000), 8000)
    result = cli("run", str(model), "--source", str(folder / "a_16k.wav"), "--json")
    assert result.exit_code == 0, result.output
    (line,) = [r for r in json_lines(result.stdout) if "results" in r]
    top = line["results"][0]
    assert set(top) == {"index", "label", "score"} and len(line["results"]) == 3
    result = cli("run", str(model), "--source", str(folder), "--json")
    lines = {Path(r["source"]).name: r["results"] for r in json_lines(result.stdout) if "results" in r}
    assert sorted(lines) == ["a_16k.wav", "b_44k_stereo.wav", "c_8k.wav"]
    # the take at 44.1 kHz in stereo is resampled and mixed back to what the model heard at 16 kHz
    # (less the noise above the resampler's 7.2 kHz pass band, so the score moves a little)
    assert lines["b_44k_stereo.wav"][0]["label"] == top["label"]
    # at 8 kHz the band above 4 kHz is gone (the "s" of "yes"): resampled, and still a result
    assert len(lines["c_8k.wav"]) == 3


def resample_to(x: np.ndarray, rate: int) -> np.ndarray:
    from edgekit.runtime.audio import resample

    return resample(x, 16000, rate)


@needs_espeak
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_long_recording_with_two_words_gives_two_events(kws_model, tmp_path, fmt):
    """Two words spoken by espeak-ng with seconds of quiet noise around them: `edgekit run --json`
    slides a 1 s window every 0.25 s and reports exactly two keyword events, in order, in place."""
    import tempfile

    from edgekit.runtime.datasets.synth.kws import espeak, speak, voice_splits

    voice = voice_splits(0)["training"][0]
    with tempfile.TemporaryDirectory() as tmp:
        yes, stop = speak(espeak(), voice, [("yes", 100, 0), ("stop", 100, 0)], Path(tmp), "w")
    rate = 16000
    x = 0.003 * np.random.default_rng(0).standard_normal(7 * rate)
    for word, at in ((yes, 1.5), (stop, 4.5)):
        x[round(at * rate) : round(at * rate) + len(word)] += 0.5 * word / np.abs(word).max()
    long = write_wav(tmp_path / "long.wav", x, rate)

    result = cli("run", str(kws_model.with_suffix(f".{fmt}")), "--source", str(long), "--json")
    assert result.exit_code == 0, result.output
    lines = [r for r in json_lines(result.stdout) if "results" in r]
    assert len(lines) == 25  # windows starting every 0.25 s from 0 to 6 s: the last ends at 7 s
    events = [e for r in lines for e in r["results"]]
    assert [e["label"] for e in events] == ["yes", "stop"], events
    assert all(e["event"] == "keyword" for e in events)
    # each event's window holds its word
    for event, (word, at) in zip(events, ((yes, 1.5), (stop, 4.5))):
        assert event["t_start"] <= at and at + len(word) / rate <= event["t_end"], event


@needs_espeak
def test_an_audio_model_refuses_a_camera(kws_model):
    result = cli("run", str(kws_model.with_suffix(".tflite")), "--source", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "takes audio" in result.output and "gives image" in result.output


@needs_espeak
def test_kws_lstm_exports_to_tflite_and_onnx(kws_data, tmp_path):
    """The LSTM variant: trained a little, then through the exporter's unrolled batch-1 graph for
    TFLite and the fused ONNX LSTM, each validated against Keras."""
    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train

    train(
        "kws-lstm",
        tmp_path,
        data=str(kws_data),
        epochs=2,
        hparams=dict(get_recipe("kws-lstm").tiny),
        quiet=True,
    )
    for fmt in ("tflite", "onnx"):
        done = cli("export", str(tmp_path / "model.keras"), "--to", fmt)
        assert done.exit_code == 0, done.output
        assert "top-1 agreement 1.0000" in done.output
    result = cli("run", str(tmp_path / "model.tflite"), "--source", str(kws_data / "yes"), "--json")
    assert result.exit_code == 0 and len([r for r in json_lines(result.stdout) if "results" in r]) == 80


@pytest.mark.slow
@needs_espeak
@pytest.mark.parametrize("name", ["kws", "kws-lstm"])
def test_full_training_reaches_the_bar_on_held_out_voices(name, tmp_path):
    """The recipe as it is, on the generator's default 2,400 clips: accuracy on voices never heard."""
    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train
    from edgekit.runtime.datasets.synth import make

    make("kws", tmp_path / "data")
    result = train(name, tmp_path / "run", data=str(tmp_path / "data"), quiet=True)
    acc = result.card.metrics["heldout_accuracy"]
    print(f"{name}: held-out-voice accuracy {acc:.4f} in {result.seconds:.1f}s")
    assert acc >= get_recipe(name).evaluation.bar


@needs_espeak
def test_keyword_spotting_on_a_device_imports_no_tensorflow(kws_model, kws_data):
    from conftest import run_python

    wav = kws_data / sorted((kws_data / "testing_list.txt").read_text().split())[0]
    code = (
        "import sys\n"
        "from edgekit.runtime.predictor import Predictor\n"
        "from edgekit.runtime.sources import open_source\n"
        "import edgekit.runtime.sources.audio, edgekit.runtime.datasets.audio\n"
        f"with Predictor({str(kws_model.with_suffix('.tflite'))!r}) as p, open_source({str(wav)!r}) as src:\n"
        "    print([p(item.data).results[0].label for item in src])\n"
        "print([m for m in ('tensorflow', 'keras', 'tf2onnx', 'tf_keras') if m in sys.modules])\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    labels, modules = proc.stdout.strip().splitlines()
    assert len(eval(labels)) == 1 and modules == "[]"
