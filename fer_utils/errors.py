"""One base exception, a few specific ones (papermill's pattern).

Every message names the file or value, what was expected, and how to fix it, so the CLI can
print it as one line and a notebook user can act on it without reading a traceback.
"""


class FerError(Exception):
    """Base class of every error this package raises on purpose.

    ``exit_code`` is what ``fer`` exits with: 2 for bad input (the default), 1 for a failed job
    (a subclass sets it, e.g. :class:`NotebookError`)."""

    exit_code = 2


class DataError(FerError):
    """A data set on disk is missing, unreadable, or not in a layout we know."""


class NoLayout(DataError):
    """No data set layout at all was recognised (not: a recognised layout with a fault in it)."""


class ConfigError(FerError, ValueError):
    """A configuration value is out of range or inconsistent."""


class RunStoreError(FerError):
    """The run store holds something we did not expect (a corrupt or foreign run)."""


class NotebookError(FerError):
    """A notebook failed while executing (a failed job: exit status 1, not bad input).

    Carries ``notebook`` (its name), ``cell`` (the execution count of the failing cell, or None)
    and ``executed`` (the kept executed copy, papermill's error banner included)."""

    exit_code = 1

    def __init__(self, message: str, *, notebook: str, cell=None, executed=None):
        super().__init__(message)
        self.notebook, self.cell, self.executed = notebook, cell, executed
