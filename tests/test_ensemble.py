"""Ensembles (``shipped+RUN_A+RUN_B``): the mean of the members' probabilities, matched by class
name; the one-line refusals; and the whole path through ``fer evaluate``/``compare``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_fer, write_report_layout
from test_evaluate import Oracle, _colours

from fer_utils.apply import evaluate as ev
from fer_utils.apply.ensemble import EnsemblePredictor, members_of
from fer_utils.data.datasets import CLASS_NAMES
from fer_utils.errors import ConfigError

#: The fer package's spelling and order: an ensemble matches its members' classes by name.
OTHER_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class Soft(Oracle):
    """An :class:`Oracle` that gives its answer probability ``confidence`` and spreads the rest."""

    def __init__(self, *args, confidence=0.9, **kw):
        super().__init__(*args, **kw)
        self.confidence = confidence

    def predict(self, x, batch_size=256):
        hard = super().predict(x, batch_size)
        rest = (1 - self.confidence) / (hard.shape[1] - 1)
        return np.where(hard > 0, self.confidence, rest)


def test_the_mean_of_the_members_matched_by_class_name(tmp_path):
    root = write_report_layout(tmp_path / "ds", per_class=(1, 3))
    sure = Soft(_colours(), confidence=0.9)  # right on every face
    partly = Soft(_colours(), class_names=OTHER_ORDER, right={0, 1, 2, 3}, confidence=0.6)  # says Neutral on Sadness and Anger
    assert ev.evaluate(partly, root)["accuracy"] == pytest.approx(15 / 21)
    both = EnsemblePredictor([sure, partly], "sure+partly")
    x = ev.load_faces(root, 24)[0]
    # by hand: the second member's columns put into the first's order by name, then the mean
    order = [[ev.canonical(c) for c in OTHER_ORDER].index(c) for c in CLASS_NAMES]
    by_name = partly.predict(x)[:, order]
    assert both.predict(x) == pytest.approx((sure.predict(x) + by_name) / 2)
    assert ev.evaluate(both, root)["accuracy"] == 1.0  # 0.9 outvotes 0.6 where they disagree
    # a confident wrong member outvotes an unsure right one: the mean, not a vote of answers
    unsure = Soft(_colours(), confidence=0.3)
    loud = Soft(_colours(), class_names=OTHER_ORDER, right={0, 1, 2, 3}, confidence=0.95)
    r = ev.evaluate(EnsemblePredictor([unsure, loud], "unsure+loud"), root)
    assert r["accuracy"] == pytest.approx(15 / 21)
    d = r["model"]
    assert d["model"] == "unsure+loud" and d["members"] == ["oracle", "oracle"] and d["input"] == [24, 24, 3]


def test_members_must_agree_on_size_and_classes():
    a = Soft(_colours())
    small = Soft(_colours())
    small.load_size = 12
    with pytest.raises(ConfigError, match="24 px and 12 px"):
        EnsemblePredictor([a, small], "a+small")
    few = Soft(_colours(), class_names=CLASS_NAMES[:6])
    with pytest.raises(ConfigError, match="classes differ"):
        EnsemblePredictor([a, few], "a+few")


def test_an_ensemble_name_and_its_refusals(tmp_path):
    assert members_of("shipped") is None and members_of(None) is None and members_of(Oracle({})) is None
    assert members_of("shipped+resnet-e40-b128-s1-holdout-9c5f6ce3d500") == ["shipped", "resnet-e40-b128-s1-holdout-9c5f6ce3d500"]
    assert members_of("a.keras + b.keras") == ["a.keras", "b.keras"]
    plus = tmp_path / "c++.keras"
    plus.write_bytes(b"x")
    assert members_of(plus) is None and members_of(str(plus)) is None  # a file that exists is one model
    with pytest.raises(ConfigError, match="an empty member"):
        members_of("shipped++b.keras")
    with pytest.raises(ConfigError, match="shipped named twice"):
        members_of("shipped+shipped")
    with pytest.raises(ConfigError, match="cannot be a member"):
        members_of("shipped+fer-package")


def test_fer_evaluate_an_ensemble_end_to_end(tmp_path):
    """Two saved models and their ensemble through the CLI: its accuracy is that of the mean of
    the two models' own probabilities, computed here from the models themselves."""
    from fer_utils.models.registry import load_model, save_model
    from fer_utils.models.report_cnn import build_model

    root = write_report_layout(tmp_path / "ds", per_class=(1, 6))
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"m{seed}.keras")
        save_model(build_model(depth=2, input_size=24, seed=seed), paths[-1], class_names=CLASS_NAMES)
    spec = f"{paths[0]}+{paths[1]}"
    out = run_fer("evaluate", spec, str(root), "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    x, y = ev.load_faces(root, 24)[:2]
    mean = sum(np.asarray(load_model(p, compile=False)[0].predict_on_batch(x)) for p in paths) / 2
    assert got["correct"] == int((mean.argmax(1) == y).sum()) and got["n"] == len(y) == 42
    assert got["model"]["members"] == [str(p) for p in paths]
    out = run_fer("compare", str(paths[0]), spec, str(root), home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"B: {spec}: accuracy" in out.stdout
    # fer organize sorts with it, says so, and resumes only with the same members
    out = run_fer("organize", str(root / "class" / "test"), str(tmp_path / "sorted"), "--model", spec, home=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "sorted" / "sorted_by.json").read_text())
    assert record["kind"] == "ensemble" and record["members"] == [str(p) for p in paths]
    assert sum(1 for p in (tmp_path / "sorted").rglob("*.png") if "_sheets" not in p.parts) == 42
    out = run_fer("organize", str(root / "class" / "test"), str(tmp_path / "sorted"), "--model", str(paths[0]), home=tmp_path)
    assert out.returncode == 2 and "already organized with different model" in out.stderr
    for bad, says in ((f"{paths[0]}+{paths[0]}", "named twice"), (f"{paths[0]}+fer-package", "cannot be a member"),
                      (f"{paths[0]}+{tmp_path / 'none.keras'}", "none.keras")):
        out = run_fer("evaluate", bad, str(root), home=tmp_path)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and says in lines[0] and "Traceback" not in out.stderr, out.stderr
