"""Atomic writes: an interrupted write never leaves a half-written file where a good one stood, and
never leaves its part file behind for long.

A write goes to `.NAME.<pid>-<random>.part` beside the target, is flushed to disk (`fsync`) and
renamed over the target in one step. The part is removed when the write fails, when the process
exits or is sent SIGTERM/SIGHUP; a part left by a process that was killed outright (SIGKILL, power
loss) is removed by the next write to the same target, once its writer is gone.

Temporary folders carry their process's id in the name (`edgekit-KIND-pidN-*`): they are removed
on exit, on error and on SIGTERM/SIGHUP, and one left by a process that was killed outright is
removed by the next `edgekit` to start once process N is gone. The `edgekit` command puts all of
its own temporary files (TensorFlow's `__autograph_generated_file*.py` included) into one such
folder, so nothing it makes is left loose in the temp folder."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import ConfigError

# when this process started (close enough: when edgekit was first imported); a part file older
# than this whose writer is gone cannot be one this process or a live one is still writing
_STARTED = time.time()
_parts: set[Path] = set()  # part files this process is writing now
_lock = threading.Lock()
_handlers_installed = False
_folders: set[Path] = set()  # temporary folders this process made and has not removed yet
_claimed: Path | None = None  # the `edgekit` command's own temporary folder
TEMP_NAME = re.compile(r"^edgekit-[a-z0-9-]+?-pid(\d+)-")  # the pid in a temporary folder's name


def check_writable(path: Path, *, force: bool) -> None:
    """Fail before any work if `path` exists (without force) or its folder cannot be written."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: pass --force to overwrite it")
    parent = path.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(f"cannot write to {parent}: the folder is not writable")


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    `keep_suffix` gives the temporary file the same suffix, for writers that insist on one (Keras)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(path)
        suffix = f".part{path.suffix}" if keep_suffix else ".part"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise ConfigError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    _track(tmp_path)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; the result should look like any new file
    try:
        yield tmp_path
        _fsync(tmp_path)  # the rename must not reach the disk before the data does
        os.replace(tmp_path, path)
        _fsync(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)
        with _lock:
            _parts.discard(tmp_path)


def remove_stale_parts(path: Path) -> list[Path]:
    """Remove the part files of earlier writes to `path` whose writer is gone; returns them."""
    removed = []
    for part in Path(path).parent.glob(f".{glob_escape(Path(path).name)}.*.part*"):
        try:
            pid = int(part.name[len(path.name) + 2 :].split("-", 1)[0])
        except ValueError:
            pid = None  # an older edgekit's name, without a pid
        try:
            if part.stat().st_mtime >= _STARTED or (pid is not None and _alive(pid)):
                continue
            part.unlink()
            removed.append(part)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the data itself was synced
        pass
    finally:
        os.close(fd)


def _track(part: Path | None) -> None:
    """Remember a part file (None: only make sure the exit and signal handlers are set)."""
    global _handlers_installed
    with _lock:
        if part is not None:
            _parts.add(part)
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(_remove_parts)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still covers exit
    for sig in (signal.SIGTERM, signal.SIGHUP):
        # only where nobody else has a say: a handler the application set is left alone
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)


def _remove_parts() -> None:
    with _lock:
        parts, folders = list(_parts), list(_folders)
        _parts.clear()
        _folders.clear()
    for part in parts:
        with contextlib.suppress(OSError):
            part.unlink()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def temp_dir(kind: str, parent: Path | None = None) -> Path:
    """A new temporary folder `edgekit-KIND-pidN-*` (in the temp folder, or `parent`), removed at
    exit or on SIGTERM/SIGHUP if the caller has not removed it; `remove_stale_temp` clears it
    after a kill."""
    folder = Path(tempfile.mkdtemp(prefix=f"edgekit-{kind}-pid{os.getpid()}-", dir=parent))
    _track_folder(folder)
    return folder


@contextlib.contextmanager
def temporary_dir(kind: str) -> Iterator[Path]:
    """`temp_dir` for a `with` block: removed when the block ends, whether it succeeded or not."""
    folder = temp_dir(kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with _lock:
            _folders.discard(folder)


def remove_stale_temp(root: Path | None = None) -> list[Path]:
    """Remove the temporary folders of edgekit processes that are gone (killed, so their own
    clean-up never ran); returns them. A live process's folder, or one without a pid, is kept."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:  # a listing, not `Path.glob`: this runs at every start, and a glob pattern compiles a regex
        with os.scandir(root) as listing:
            entries = [root / e.name for e in listing if e.name.startswith("edgekit-")]
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if match is None or _alive(int(match.group(1))) or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def claim_temp_dir() -> Path:
    """For the `edgekit` command: clear the folders dead edgekit processes left, then make this
    process's own temporary folder the default for every temporary file it makes (TensorFlow's
    included), removed at exit. Only the command calls this: a library caller keeps its own
    temp folder setting."""
    global _claimed
    if _claimed is None:
        remove_stale_temp()
        _claimed = temp_dir("cli")
        tempfile.tempdir = str(_claimed)
    return _claimed


def _track_folder(folder: Path) -> None:
    _track(None)
    with _lock:
        _folders.add(folder)


def _on_signal(signum: int, frame: object) -> None:
    # remove the parts, then die of the same signal as if no handler had been set
    _remove_parts()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def umask() -> int:
    """The process's umask (what a new file's or folder's mode leaves out)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_umask = umask


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
