"""Darknet models: a `.cfg` and a `.weights` file with the same name, named by either. A cfg holds no
card; the one `run` uses is worked out from it (input size, heads, anchors, classes)."""

from __future__ import annotations

from edgekit.card import ModelCard
from edgekit.runtime.darknet_suffixes import CFG_SUFFIX, WEIGHTS_SUFFIX
from edgekit.runtime.files import FILE_KINDS, FileKind, ModelFile


class DarknetKind(FileKind):
    name = "darknet"
    suffixes = (CFG_SUFFIX, WEIGHTS_SUFFIX)
    description = "Darknet .cfg + .weights (OpenCV DNN)"
    whole_file = False

    def card(self, file: ModelFile) -> ModelCard | None:
        from edgekit.runtime.darknet import read_darknet_card  # the parser only for a Darknet file

        return read_darknet_card(file.path)

    def quantization(self, file: ModelFile) -> str:
        return "fp32"


FILE_KINDS.add(DarknetKind())
