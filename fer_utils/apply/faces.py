"""Input files to model inputs for sorting: decoding in a thread pool, each image to its faces
(:mod:`fer_utils.apply.detect`: a face crop is one face, a photo is searched for every face)."""

from __future__ import annotations

from fer_utils.apply.detect import faces_of
from fer_utils.errors import FerError


def submit_decodes(pool, src, rels, size, faces, channels):
    """Decode the files ``rels`` of the Source ``src`` in the thread pool ``pool`` (zip members are
    read here, in this thread); each future gives (rel, bytes, [Face] or None, error or None, mtime_ns)."""
    def work(rel, data):
        mtime_ns = None
        try:
            if data is None:
                data = src.read(rel)
                mtime_ns = src.mtime_ns(rel)
        except OSError as exc:
            return rel, None, None, f"cannot read ({exc.strerror or exc})", None
        try:
            return rel, data, faces_of(data, size, rel, faces, channels), None, mtime_ns
        except FerError as exc:  # not an image, or a photo without a face
            return rel, data, None, str(exc).split(": ", 1)[-1], None
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the run
            return rel, data, None, f"cannot decode image ({type(exc).__name__})", None

    futures = []
    for rel in rels:
        data = None
        if src.is_zip:  # zip members are read here, in one thread
            try:
                data = src.read(rel)
            except OSError as exc:  # bad CRC, encrypted member, ...
                futures.append(pool.submit(lambda rel=rel, e=exc: (rel, None, None, e.strerror or str(e), None)))
                continue
        futures.append(pool.submit(work, rel, data))
    return futures
