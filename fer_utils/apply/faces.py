"""Input files to model inputs for sorting: decoding in a thread pool, and finding the face in an
ordinary photo first (``fer organize --detect-faces``: OpenCV's Haar cascade, as the opencv
wheels ship it, one classifier per thread)."""

from __future__ import annotations

import os
import threading

import numpy as np

from fer_utils.data.datasets import decode_image
from fer_utils.errors import DataError, FerError


_cascades = threading.local()


def detector():
    """(cv2, this thread's Haar classifier); a one-line FerError when OpenCV or its cascade is missing."""
    try:
        import cv2
    except ImportError:
        raise FerError(
            "detect_faces=True needs OpenCV, which is not installed. Install it with "
            "'pip install opencv-python-headless<5' (or the package's 'faces' extra), or run without face detection"
        ) from None
    c = getattr(_cascades, "c", None)
    if c is None:  # one classifier per thread: detectMultiScale is not documented thread safe
        xml = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), "haarcascade_frontalface_default.xml")
        c = cv2.CascadeClassifier(xml)
        if c.empty():
            raise FerError(
                f"{xml}: OpenCV's Haar cascade is missing (OpenCV {cv2.__version__}; the 5.x wheels no longer "
                f"ship cv2.data). Install 'opencv-python-headless<5', or run without face detection"
            )
        _cascades.c = c
    return cv2, c


def largest_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest frontal face Haar finds in an RGB uint8 image, or None."""
    cv2, cascade = detector()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    side = min(gray.shape[:2])
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(max(20, side // 5),) * 2)
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
    return x, y, w, h


def decode_face(data: bytes, size: int, name: str, detect_faces: bool, channels: int = 3) -> np.ndarray:
    """The image ``data`` as the model's input: decoded as in training, or (``detect_faces``) its
    largest face cropped first (the whole image where none is found)."""
    if not detect_faces:
        return decode_image(data, size, name, channels=channels)
    from PIL import Image

    from fer_utils.data.datasets import to_channels

    full = decode_image(data, None, name)
    box = largest_face(full)
    if box is not None:  # no face found: keep the whole image (UTKFace crops often are the face)
        x, y, w, h = box
        full = full[y : y + h, x : x + w]
    face = np.asarray(Image.fromarray(full).resize((size, size), Image.NEAREST), dtype=np.uint8)
    return to_channels(face[None], channels)[0]


def submit_decodes(pool, src, rels, size, detect_faces, channels):
    """Decode the files ``rels`` of the Source ``src`` in the thread pool ``pool`` (zip members are
    read here, in this thread); each future gives (rel, bytes, face or None, error or None, mtime_ns)."""
    def work(rel, data):
        mtime_ns = None
        try:
            if data is None:
                data = src.read(rel)
                mtime_ns = src.mtime_ns(rel)
        except OSError as exc:
            return rel, None, None, f"cannot read ({exc.strerror or exc})", None
        try:
            return rel, data, decode_face(data, size, rel, detect_faces, channels), None, mtime_ns
        except DataError as exc:
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
