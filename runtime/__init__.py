"""The edgekit runtime: backends, tasks, sources and the timing core of `bench`.

It never imports TensorFlow (a test proves it in a fresh interpreter), so it runs on a device
with only `pip install edgekit`. Everything heavy is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.runtime.files import ModelFile, read_card
    from edgekit.runtime.predictor import Predictor

__all__ = ["ModelFile", "Predictor", "open_model", "read_card"]


def __getattr__(name: str):  # lazy, so `import edgekit.runtime` stays cheap
    if name == "Predictor":
        from edgekit.runtime.predictor import Predictor

        return Predictor
    if name == "open_model":
        from edgekit.runtime.backends import open_model

        return open_model
    if name in ("ModelFile", "read_card"):
        from edgekit.runtime import files

        return getattr(files, name)
    raise AttributeError(name)
