"""fer_utils: the course report's RAF-DB facial expression study as a small, tested package.

One subpackage per stage of the data flow, each importing only the stages before it:
``data`` (faces to arrays) -> ``models`` (every network, one registry) -> ``training`` (one
trainer, one run store, the engine) -> ``apply`` (evaluate, organize, choose a model) ->
``study`` (Tables 1-4, claims, report, notebooks). At the top: ``cli`` (the ``fer`` command) and
the leaves every stage uses: ``errors``, ``atomic``, ``paths``, ``progress``, ``stats``.
"""

from fer_utils.training import backend as _backend

# Before anything imports TensorFlow: quiet its C++ start-up logs and apply the CPU defaults
# measured in benchmarks/RESULTS.md (environment variables only; nothing heavy is imported).
_backend.quiet()

__version__ = "0.1.0"
