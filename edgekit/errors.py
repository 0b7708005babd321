"""The errors a user can cause. Library code raises them with a sentence the user can act on;
only the CLI turns them into exit codes."""

from __future__ import annotations


class EdgekitError(Exception):
    """Base of every error edgekit raises on purpose."""


class ConfigError(EdgekitError):
    """An option or a combination of options that cannot work."""


class UnsupportedError(EdgekitError):
    """A valid request this model, format or platform cannot do."""


class UnknownNameError(EdgekitError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(EdgekitError, ImportError):
    """An optional library is not installed; the message names the install command."""


class ModelFileError(EdgekitError):
    """A model file that is missing, corrupt, or not what it claims to be."""


class DataError(EdgekitError):
    """A dataset, image, or input that cannot be read or has the wrong shape."""


class SourceError(EdgekitError):
    """An input source (camera, video, directory, stream) that cannot be opened."""


class VerificationError(EdgekitError):
    """An exported model that disagrees with its Keras original beyond the allowed bar."""


def first_line(e: BaseException) -> str:
    """The first line of a library's exception message: enough for one clear sentence."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
