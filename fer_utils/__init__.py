"""fer_utils: the course report's RAF-DB facial expression study as a small, tested package.

Modules, one per stage of the data flow: ``datasets`` (RAF-DB in three layouts, or the
``synthetic`` stand-in) -> ``model`` (the report's CNN, with ``augment``) -> ``train`` (one
configuration, resumable) -> ``runs`` (the run store) -> ``experiments`` (Tables 1-4) ->
``report`` and ``figures``; ``organize`` sorts unlabelled faces; ``cli`` is the ``fer`` command.
"""

from . import backend as _backend

# Before anything imports TensorFlow: quiet its C++ start-up logs and apply the CPU defaults
# measured in benchmarks/RESULTS.md (environment variables only; nothing heavy is imported).
_backend.quiet()

__version__ = "0.1.0"
