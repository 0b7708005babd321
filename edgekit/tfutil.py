"""Importing TensorFlow quietly, for the training and export sides only (never the runtime)."""

from __future__ import annotations

import os
from types import ModuleType

from edgekit.errors import MissingDependencyError

INSTALL_TRAIN = "pip install 'edgekit[train]'"


def import_tf() -> tuple[ModuleType, ModuleType]:
    """(tensorflow, keras), with TensorFlow's start-up chatter silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    from edgekit.deps import quiet_native_stderr

    try:
        with quiet_native_stderr():
            import keras
            import tensorflow as tf
    except ImportError as e:
        raise MissingDependencyError(f"TensorFlow is needed here ({e}): run `{INSTALL_TRAIN}`") from None
    tf.get_logger().setLevel("ERROR")
    return tf, keras
