"""Moved to `edgekit.runtime.detection_formats.edgekit_grid`; kept only for the `detector` recipe's
import until it points there (the recipe is another helper's file)."""

from edgekit.runtime.detection_formats.edgekit_grid import BOX, encode_grid, grid_postprocess

__all__ = ["BOX", "encode_grid", "grid_postprocess"]
