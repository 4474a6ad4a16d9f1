"""Exceptions raised by the detector package."""


class DetectorError(Exception):
    """Base class for errors raised by mtdetect."""


class ModelError(DetectorError):
    """The model folder is missing, incomplete, or fails its checksum."""


class SettingsError(DetectorError, ValueError):
    """A decision setting (threshold, span threshold, span gate, span score) is out of range or unknown."""
