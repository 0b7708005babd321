"""A digest that seals an exported file: weights, graph, quantization parameters and card.

Export writes the card with `file_sha256` set to 64 zeros, takes the SHA-256 of the whole file as
written, and puts the digest in place of the zeros (the same length, so no byte moves). To check a
file, put the zeros back and hash again. One pass of SHA-256 over the bytes, the same for every
format, with no parser: the card's JSON lies verbatim in the file (a TFLite metadata buffer, an
ONNX metadata_props string), so it is found by its text. Why the whole file and not only the
constant buffers or initializers: a flipped bit in a quantization scale, a tensor shape or the
card's preprocessing changes answers as surely as one in a weight, and reading ONNX initializers
would need the `onnx` package, which devices lack.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from edgekit.errors import ModelFileError

FIELD = "file_sha256"
PLACEHOLDER = "0" * 64


def _entry(digest: str) -> bytes:
    # how ModelCard.to_json writes the field (json.dumps with its default separators)
    return f'"{FIELD}": "{digest}"'.encode()


def seal(buf: bytes) -> bytes:
    """The exported file `buf` (its card's `file_sha256` the placeholder) with its digest in place."""
    entry = _entry(PLACEHOLDER)
    if buf.count(entry) != 1:
        raise ModelFileError(f"the exported file holds {buf.count(entry)} digest placeholders, not one")
    return buf.replace(entry, _entry(hashlib.sha256(buf).hexdigest()))


def file_digest(buf: bytes, recorded: str) -> str | None:
    """The digest of `buf` computed as `seal` did, or None when the recorded one is not found
    exactly once in it (the card's bytes were changed)."""
    entry = _entry(recorded)
    if buf.count(entry) != 1:
        return None
    return hashlib.sha256(buf.replace(entry, _entry(PLACEHOLDER))).hexdigest()


_verdicts: dict[tuple[str, int, int, int], bool] = {}
_lock = threading.Lock()


def check_digest(file: Any, recorded: str) -> None:
    """Refuse a model file (`edgekit.runtime.files.ModelFile`) whose bytes are not the ones export
    sealed, hashing the bytes it has already read. A file with no recorded digest (exported before
    it was recorded) passes unchecked. The verdict is kept by the stat the bytes were read under,
    so a long-lived program that reopens a model hashes it once."""
    if not recorded:
        return
    data, st = file.data, file.stat
    key = None if st is None else (str(file.path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _lock:
        ok = _verdicts.get(key) if key is not None else None
    if ok is None:
        ok = file_digest(data, recorded) == recorded
        if key is not None:
            with _lock:
                _verdicts[key] = ok
    if not ok:
        raise ModelFileError(
            f"{file.path} was changed after export (its contents do not match the digest in its card): "
            "export it again or restore the original file"
        )
