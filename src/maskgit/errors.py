"""Exceptions the command line reports as one-line errors."""


class MaskgitError(Exception):
    """Base class: a problem with the user's input, files or environment, explained in one line."""


class ConfigError(MaskgitError, ValueError):
    """An invalid or unreadable config."""


class DataError(MaskgitError, ValueError):
    """An image, mask or data folder that cannot be used."""


class CheckpointError(MaskgitError):
    """A checkpoint or saved model that is missing, corrupt or of the wrong kind."""


class WeightsError(MaskgitError):
    """Pretrained backbone weights that cannot be found or downloaded."""
