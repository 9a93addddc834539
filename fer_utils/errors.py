"""One base exception, a few specific ones (papermill's pattern).

Every message names the file or value, what was expected, and how to fix it, so the CLI can
print it as one line and a notebook user can act on it without reading a traceback.
"""


class FerError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(FerError):
    """A data set on disk is missing, unreadable, or not in a layout we know."""


class ConfigError(FerError, ValueError):
    """A configuration value is out of range or inconsistent."""


class RunStoreError(FerError):
    """The run store holds something we did not expect (a corrupt or foreign run)."""
