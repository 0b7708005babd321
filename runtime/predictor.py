"""A model file bound to its task: raw input in, typed results out, with per-stage times."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import DataError
from edgekit.runtime.backends import Session, open_model
from edgekit.runtime.files import ModelFile
from edgekit.runtime.tasks import Task, TaskOptions, get_task

NON_FINITE = "the model gave non-finite outputs (NaN or inf) for this input"


@dataclass
class Prediction:
    results: list[Any]
    times: dict[str, float] = field(default_factory=dict)  # seconds per stage
    done: float = 0.0  # time.perf_counter() when the results were ready


def check_finite(outputs: Sequence[np.ndarray]) -> None:
    """Raise DataError when a float output holds NaN or inf: a damaged weight or an input the model
    overflows on gives them, and a NaN score printed as a result is a wrong answer said in silence.

    A classifier's few scores are checked as Python floats (a third of numpy's two calls on them,
    right after an invoke has evicted the caches); a large output by numpy's own reduce."""
    for out in outputs:
        if out.dtype.kind not in "fc":
            continue
        if out.size <= _FEW and out.dtype.kind == "f":
            if not all(map(math.isfinite, out.ravel().tolist())):
                raise DataError(NON_FINITE)
        elif not np.logical_and.reduce(np.isfinite(out), axis=None):
            raise DataError(NON_FINITE)


_FEW = 256  # up to this many values, a Python loop over them beats numpy's calls


@dataclass
class _Worker:
    """What one call holds for itself: a session (shared when the backend runs calls concurrently)
    and a task (its own: a detector's preprocess keeps the letterbox its postprocess reads)."""

    session: Session
    task: Task


class Predictor:
    """Opens a model, reads its card, and runs preprocess -> backend -> postprocess.

    Safe to share between threads. A call takes a worker (its own task, and its own interpreter
    where the backend's are not thread-safe, as TFLite's are not: one interpreter shared by four
    threads raised "There is at least 1 reference to internal data" and handed one thread another's
    result). Up to `workers` calls run at once; more wait for a free worker. Workers after the
    first are opened only when calls overlap, so a single-threaded program pays nothing: a call
    takes the first worker with one non-blocking lock, and only a call that finds it busy goes
    through the pool's condition. A task that keeps state between inputs (keyword spotting over a
    stream) should be fed by one thread.
    """

    def __init__(
        self,
        path: str | Path | ModelFile,
        *,
        backend: str | None = None,
        threads: int | None = None,
        device: str = "auto",
        card: ModelCard | None = None,
        options: TaskOptions | None = None,
        labels: Sequence[str] | None = None,
        workers: int = 2,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.file = ModelFile.open(path)  # read once: every worker's session opens these bytes
        self.session: Session = open_model(self.file, backend, threads, device)
        self._open_args = (self.file, backend, threads, device)
        self.threads = threads  # inference threads asked for (None: the library's default)
        self._options = options or TaskOptions()
        try:
            card = card or self.session.card
            if card is None:  # a well-known detector (BlazeFace, Ultralytics YOLO) needs none
                from edgekit.runtime.inferred_cards import infer_card

                card = infer_card(self.file, self.session)
            if card is None:  # any other file runs as tensors in, tensors out (the card says so)
                from edgekit.runtime.tasks.tensor import tensor_card

                card = tensor_card(self.session)
            if labels is not None:  # --labels: class names for a model that has none or others
                card = card.replace(labels=tuple(labels))
            self.card = card
            self.task: Task = self._task(self.session)
        except BaseException:
            self.session.close()
            raise
        self.workers = workers
        self._first = _Worker(self.session, self.task)
        self._first_lock = threading.Lock()  # held while a call uses the first worker
        self._all = [self._first]
        self._idle: list[_Worker] = []  # free workers after the first
        self._opening = 0
        self._waiting = 0  # calls waiting in the pool for a worker
        self._cond = threading.Condition()

    def _task(self, session: Session) -> Task:
        return get_task(self.card.task)(self.card, session.inputs, session.outputs, self._options)

    # -- workers -------------------------------------------------------------------------------

    def _take(self) -> _Worker:
        if self._first_lock.acquire(blocking=False):  # one thread, or no overlap: no pool at all
            return self._first
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    # counted as waiting before this try: a `_give` of the first worker that
                    # comes after it notifies, one that came before left the lock free
                    if self._first_lock.acquire(blocking=False):
                        return self._first
                    if self._idle:
                        return self._idle.pop()
                    if len(self._all) + self._opening < self.workers:
                        self._opening += 1  # open one more below
                        break
                    self._cond.wait()
            finally:
                self._waiting -= 1
        try:  # opened outside the lock: the other workers go on meanwhile
            session = self.session
            if not session.concurrent:
                session = open_model(*self._open_args)
            worker = _Worker(session, self._task(session))
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._opening -= 1
            self._all.append(worker)
        return worker

    def _give(self, worker: _Worker) -> None:
        if worker is self._first:
            self._first_lock.release()
            if not self._waiting:
                return
        with self._cond:
            if worker is not self._first:
                self._idle.append(worker)
            self._cond.notify()

    # -- calls ---------------------------------------------------------------------------------

    def infer(self, raw: Any) -> list[np.ndarray]:
        """The raw outputs of the model for one input (NaN and inf included, for a caller that
        counts them)."""
        worker = self._take()
        try:
            return worker.session.run(worker.task.preprocess(raw))
        finally:
            self._give(worker)

    def __call__(self, raw: Any) -> Prediction:
        """Typed results for one input; DataError when the input cannot be used or the model's
        outputs are not finite (that input failed; the next may not)."""
        # the first worker's lock taken and given here, not through `_take`/`_give`: right after an
        # inference has evicted the caches each call costs a few µs, a share of a small model's frame
        first = self._first_lock.acquire(blocking=False)
        worker = self._first if first else self._take()
        try:
            t0 = perf_counter()
            feeds = worker.task.preprocess(raw)
            t1 = perf_counter()
            outputs = worker.session.run(feeds)
            t2 = perf_counter()
            check_finite(outputs)
            results = worker.task.postprocess(outputs)
            t3 = perf_counter()
        finally:
            if not first:
                self._give(worker)
            else:  # as `_give` does: released first, then a call already waiting is told
                self._first_lock.release()
                if self._waiting:
                    with self._cond:
                        self._cond.notify()
        return Prediction(results, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}, t3)

    def close(self) -> None:
        with self._cond:
            sessions = {id(w.session): w.session for w in self._all}
        for session in sessions.values():
            session.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
