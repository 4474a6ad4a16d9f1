"""Exceptions raised by the detector package."""


class DetectorError(Exception):
    """Base class for errors raised by mtdetect."""


class ModelError(DetectorError):
    """The model folder is missing, incomplete, or fails its checksum."""
