"""The one error type for mistakes a user can make (the CLI prints it as one line and exits 2)."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user caused and can fix: the message names the problem and the fix."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class DataError(UserError):
    """A data path or archive is missing, empty, broken or of the wrong layout."""


class ConfigError(UserError):
    """An option value is invalid (bit width, preset, device, genotype, ...)."""


class RunDirError(UserError):
    """A run folder cannot be created, would be overwritten, or belongs to another config."""


class NumericalError(UserError):
    """A loss, gradient or metric became NaN or infinite: the run stops at that step (exit 2)."""


class ExportError(UserError):
    """A model cannot be frozen or exported, or the exported graph disagrees with PyTorch."""


class Paused(Exception):  # noqa: N818  (a state, not an error)
    """A run stopped at a checkpoint because its ``--stop-after`` time was spent (a lease ends); resumable."""
