"""Errors users see. Each carries a message that names the file, row and field at fault."""

from __future__ import annotations


class XstiltsError(Exception):
    """Base class: the CLI prints the message and exits non-zero, without a traceback."""


class UnknownTaskError(XstiltsError):
    pass


class DataError(XstiltsError):
    """Input data is missing or malformed (file, row and field are in the message)."""


class DataValidationError(XstiltsError):
    """The great-expectations suite failed; the message lists every failed expectation."""


class ExportParityError(XstiltsError):
    """The ONNX model disagrees with PyTorch beyond the tolerance."""


class ConfigError(XstiltsError):
    pass


class OutputExistsError(ConfigError):
    """An output path holds files xstilts did not write (or is the working folder): never deleted without --force."""
