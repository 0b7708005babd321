"""`edgekit run --serve` seen in a real browser: headless Chromium (Debian's package) driven by
Playwright opens the page of a run over two short videos of real MNIST digits, through the
quickstart's int8 model, and checks what a person would: without the token the page is refused;
with it, each source's picture changes, the figures count up, and the results are the digits
shown. Skipped, saying why, only where Chromium or Playwright is missing."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FRAMES_PER_DIGIT = 8
FPS = 10.0

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium here: apt-get install chromium"),
]


def digit_frame(digit: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit as a 112x112 camera frame (BGR)."""
    big = cv2.resize(digit.reshape(28, 28), (112, 112), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def digit_videos(tmp_path: Path, model: Path, mnist) -> tuple[list[Path], list[list[str]]]:
    """Two videos of eight digits each, every digit held for FRAMES_PER_DIGIT frames (6.4 s in
    all); only digits the model reads right through the video's own compression, so the right
    answers are known."""
    from edgekit.runtime.predictor import Predictor

    x, y = mnist.heldout.x, mnist.heldout.y  # the held-out digits, a hundred of each class in turn
    candidates = [100 * c + k for k in range(6) for c in range(10)]
    probe = make_video(tmp_path / "probe.avi", [digit_frame(x[i]) for i in candidates], fps=FPS)
    cap, read = cv2.VideoCapture(str(probe)), []
    while (got := cap.read())[0]:
        read.append(got[1])
    cap.release()
    with Predictor(model) as predictor:
        right = [
            i for i, frame in zip(candidates, read) if predictor(frame).results[0].label == str(int(y[i]))
        ]
    picked: list[int] = []
    for i in right:  # consecutive digits differ, so the picture and the answer change at each
        if not picked or int(y[i]) != int(y[picked[-1]]):
            picked.append(i)
    assert len(picked) >= 16, "the model reads too few digits right"
    videos, answers = [], []
    for n, chosen in enumerate((picked[:8], picked[8:16])):
        frames = [digit_frame(x[i]) for i in chosen for _ in range(FRAMES_PER_DIGIT)]
        videos.append(make_video(tmp_path / f"digits{n}.avi", frames, fps=FPS))
        answers.append([str(int(y[i])) for i in chosen])
    return videos, answers


def top_label(text: str) -> str | None:
    found = re.match(r"\s*(\S+) \(", text)
    return found.group(1) if found else None


def figure(page, feed: int, name: str) -> int | None:
    """A number from a source's figures on the page (None before the first figures came)."""
    text = page.inner_text(f"#figs-{feed} .fig-{name}")
    return int(text) if text.isdigit() else None


def test_the_page_shows_each_source_live_and_refuses_a_visitor_without_the_token(artifacts, mnist, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    model = artifacts[("tflite", "int8")]
    videos, answers = digit_videos(tmp_path, model, mnist)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgekit.cli", "run", str(model)]
            + [a for v in videos for a in ("--source", str(v))]
            + ["--realtime", "--serve", "0.0.0.0:0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = ""
            while not url and (line := proc.stderr.readline()):
                url = line.split("watch it at ")[1].split()[0] if "watch it at " in line else ""
            assert url, "edgekit printed no URL"
            port, token = re.search(r":(\d+)/\?token=(\S+)", url).groups()
            page = browser.new_page()

            # a non-loopback bind without the token: refused, nothing shown
            refused = page.goto(f"http://127.0.0.1:{port}/")
            assert refused.status == 401 and "needs its token" in page.inner_text("body")
            assert page.query_selector("img") is None

            page.goto(f"http://127.0.0.1:{port}/?token={token}")
            page.wait_for_selector("#img-1")
            # watch until each picture has changed, the figures have counted up and each source
            # has shown three digits (or the videos end): as long as that takes on a busy machine
            seen: list[list[str]] = [[], []]
            first, changed, counts = None, [False, False], []
            start = time.perf_counter()
            while proc.poll() is None and time.perf_counter() - start < 30:
                for feed in (0, 1):
                    label = top_label(page.inner_text(f"#result-{feed}"))
                    if label and (not seen[feed] or seen[feed][-1] != label):
                        seen[feed].append(label)
                processed = figure(page, 0, "processed")
                if first is None:
                    first = [page.locator(f"#img-{feed}").screenshot() for feed in (0, 1)]
                    first_at = time.perf_counter()
                else:  # the same picture later on, until it is another one
                    for feed in (0, 1):
                        changed[feed] = (
                            changed[feed] or page.locator(f"#img-{feed}").screenshot() != first[feed]
                        )
                if processed is not None and (
                    not counts or (len(counts) == 1 and time.perf_counter() - first_at > 1.5)
                ):
                    counts.append(processed)
                if all(changed) and len(counts) == 2 and min(len(s) for s in seen) >= 3:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)  # Ctrl-C: the run ends, and the page says so
            assert proc.wait(timeout=20) == 0, proc.stderr.read()
            page.wait_for_function(
                "document.getElementById('state').textContent.includes('ended')", timeout=10_000
            )
        finally:
            if proc.poll() is None:
                proc.kill()
            browser.close()
    for feed in (0, 1):
        assert changed[feed], f"the picture of source {feed} did not change"
        shown = seen[feed]
        assert len(shown) >= 3, f"source {feed} showed {shown}"
        first_shown = answers[feed].index(shown[0])  # the digits shown, in order, from where the page came in
        assert shown == answers[feed][first_shown : first_shown + len(shown)], (shown, answers[feed])
    assert len(counts) == 2 and counts[1] > counts[0] > 0  # the figures count up
