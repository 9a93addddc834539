"""Scoring a model on faces: the numbers every run records and every command reports.

:func:`final_row` (the report's columns from a history row), :func:`evaluate` (the report
CNN's test evaluation: the loss from the logits, accuracy, confusion, per class), :func:`score`
(accuracy with its 95% Wilson interval, mean class accuracy, per class, confusion: what
``fer evaluate`` prints and the residual network's runs record) and :func:`scores` (``score``
of a model, with the log loss and optional flip TTA).
"""

from __future__ import annotations

import math

import numpy as np

from fer_utils.stats import wilson_interval

#: The confusion matrix's column for predictions outside the data's classes.
OTHER = "(other)"


def ordered_batches(x, y, batch_size, num_classes, order=None):
    import keras

    class Batches(keras.utils.PyDataset):
        """Batches in a fixed order, one-hot labels; x stays uint8 (the model rescales)."""

        def __init__(self):
            super().__init__()
            self.order = np.arange(len(x)) if order is None else order

        def __len__(self):
            return math.ceil(len(self.order) / batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size : (i + 1) * batch_size]
            idx = np.sort(idx) if order is None else idx
            return x[idx], np.eye(num_classes, dtype="float32")[y[idx]]

    return Batches()


def final_row(row: dict) -> dict:
    """The report's columns from a history row; Discrepancy = accuracy - val_accuracy."""
    return {
        "Loss": row["loss"],
        "Accuracy": row["accuracy"],
        "Val_loss": row["val_loss"],
        "Val_accuracy": row["val_accuracy"],
        "Discrepancy": row["accuracy"] - row["val_accuracy"],
    }


def evaluate(model, x, y, class_names, batch_size=256) -> dict:
    """Loss, accuracy, confusion matrix (rows = true class) and per-class accuracy.

    The loss is the cross-entropy taken from the logits (in float64), as training takes it
    (:func:`fer_utils.models.report_cnn.softmax_crossentropy`), so a confidently wrong model's loss is not
    capped by clipping its probabilities; a model without the report's ``predictions`` Dense
    layer falls back to the probabilities, clipped at 1e-7."""
    import keras

    k = len(class_names)
    head = next((layer for layer in model.layers if layer.name == "predictions" and isinstance(layer, keras.layers.Dense)), None)
    if head is not None:
        both = keras.Model(model.inputs, [head.input, model.outputs[0]])
        feats, probs = both.predict(ordered_batches(x, y, batch_size, k), verbose=0)
        w, b = (np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in (head.kernel, head.bias))
        logits = np.asarray(feats, np.float64) @ w + b
        top = logits.max(1, keepdims=True)
        log_z = (top + np.log(np.exp(logits - top).sum(1, keepdims=True)))[:, 0]
        loss = float(np.mean(log_z - logits[np.arange(len(y)), y]))
    else:
        probs = model.predict(ordered_batches(x, y, batch_size, k), verbose=0)
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))
    pred = np.asarray(probs).argmax(1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {c: (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else float("nan")) for i, c in enumerate(class_names)}
    valid = [v for v in per_class.values() if not math.isnan(v)]
    return {
        "loss": loss,
        "accuracy": float((pred == y).mean()),
        "mean_class_accuracy": float(np.mean(valid)) if valid else float("nan"),
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "class_names": list(class_names),
        "n": int(len(y)),
    }


def score(y_true, y_pred, class_names) -> dict:
    """Accuracy (+ 95% Wilson interval), mean class accuracy over the classes present,
    per-class accuracy and the confusion matrix. ``y_pred`` == -1 is a prediction outside
    ``class_names`` (column ``(other)``)."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    k = len(class_names)
    cols = k + 1 if np.any(y_pred < 0) else k
    cm = np.zeros((k, cols), np.int64)
    np.add.at(cm, (y_true, np.where(y_pred < 0, k, y_pred)), 1)
    n, right = int(len(y_true)), int(np.sum(y_true == y_pred))
    support = cm.sum(1)
    present = [c for i, c in enumerate(class_names) if support[i]]
    per_class = {c: float(cm[i, i] / support[i]) for i, c in enumerate(class_names) if support[i]}
    lo, hi = wilson_interval(right, n)
    return {
        "n": n, "correct": right, "accuracy": right / n if n else math.nan, "ci95": [lo, hi],
        "mean_class_accuracy": float(np.mean(list(per_class.values()))) if per_class else math.nan,
        "classes_present": present, "per_class_accuracy": per_class,
        "support": {c: int(support[i]) for i, c in enumerate(class_names)},
        "confusion": cm.tolist(), "confusion_rows": list(class_names),
        "confusion_cols": list(class_names) + ([OTHER] if cols > k else []),
    }


def predict_probs(model, x, tta=None, batch_size=256) -> np.ndarray:
    def run(z):
        return np.concatenate([np.asarray(model.predict_on_batch(z[i : i + batch_size].astype("float32")))
                               for i in range(0, len(z), batch_size)])
    p = run(x)
    return (p + run(np.ascontiguousarray(x[:, :, ::-1]))) / 2.0 if tta == "flip" else p


def scores(model, x, y, class_names, tta=None) -> dict:
    """:func:`score` of ``model`` on (x, y), with the log loss."""
    p = predict_probs(model, x, tta)
    out = score(y, p.argmax(1), tuple(class_names))
    out["loss"] = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    out["class_names"] = list(class_names)
    return out
