"""The file suffixes of a Darknet model, apart from its parser (`darknet.py`): choosing a backend
by a file's suffix, or asking whether a file is a Darknet model, imports no parser."""

from __future__ import annotations

CFG_SUFFIX, WEIGHTS_SUFFIX = ".cfg", ".weights"
