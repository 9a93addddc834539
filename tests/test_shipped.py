"""The model that ships in the package: ``fer ship`` makes it, its card's numbers are checked
against the shipped file, it loads offline, it exports to ONNX and TFLite with the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_report_layout
from fer_utils import paths
from fer_utils.apply import shipped
from fer_utils.apply.card import render_card
from fer_utils.apply.ship import FP16_TOLERANCE, MAX_BYTES
from fer_utils.errors import FerError

SHIPPED = shipped.SHIPPED_DIR
needs_shipped = pytest.mark.skipif(not shipped.available(), reason="no model ships in this checkout (fer_utils/weights/)")


def _faces(n=6, side=64, seed=0) -> np.ndarray:
    """Faces of the project's own synthetic generator (never real ones), at ``side``."""
    from fer_utils.data.datasets import decode_image
    from fer_utils.data.faces_draw import render

    return np.stack([decode_image(render(seed, "test", i, i % 7)[0], side) for i in range(n)]).astype("float32")


# --------------------------------------------------------------------------------------------
# fer ship on a tiny run


@pytest.fixture
def smoke_run(tmp_path):
    from fer_utils.data import datasets
    from fer_utils.models.registry import preset
    from fer_utils.training.config import RunConfig
    from fer_utils.training.store import RunStore

    ds_path = write_report_layout(tmp_path / "ds", per_class=(12, 4))
    model, fields = preset("resnet-smoke")
    ds = datasets.load(ds_path, image_size=fields["image_size"], verbose=False)
    cfg = RunConfig(data=ds.fingerprint, model=model, **fields)
    run = RunStore().ensure(cfg, data=ds, keep_epochs=(cfg.epochs,), verbose=False)
    return run, ds_path


def test_ship_writes_weights_and_a_card_every_number_of_which_is_measured(tmp_path, smoke_run):
    from fer_utils.apply.evaluate import KerasPredictor, evaluate
    from fer_utils.apply.ship import ship_run
    from fer_utils.models.registry import load_model

    run, ds_path = smoke_run
    dest = tmp_path / "weights"
    card = ship_run(run.id, [("toy test", ds_path), ("a second set", ds_path)], dest=dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted([shipped.WEIGHTS, shipped.CARD, shipped.CARD_MD])
    assert json.loads((dest / shipped.CARD).read_text()) == json.loads(json.dumps(card))
    assert (dest / shipped.CARD_MD).read_text() == render_card(card) == render_card(shipped.read_card(dest))
    text = (dest / shipped.CARD_MD).read_text()
    assert text.index("| toy test") < text.index("| a second set")  # in the order given, the training data's first
    assert shipped.choice(dest)["test_set"] == "toy test"
    p = card["holdout"]["precision"]
    assert card["weights"]["dtype"] == ("float16" if abs(p["float16_accuracy"] - p["float32_accuracy"]) <= FP16_TOLERANCE else "float32")
    # the shipped file gives the trained model's answers (float16 rounding aside) and the card's numbers
    net, names = shipped.load(dest)
    trained, _ = load_model(run.model_path(), compile=False)
    x = _faces(side=32)
    assert np.abs(np.asarray(net.predict_on_batch(x)) - np.asarray(trained.predict_on_batch(x))).max() < 2e-2
    again = evaluate(KerasPredictor.of(net, names, "shipped"), ds_path)
    assert (again["correct"], again["confusion"]) == (card["tests"]["toy test"]["correct"], card["tests"]["toy test"]["confusion"])
    assert "replaces" not in card and "## Replaces" not in text  # the first model shipped into dest
    # no --name: named after what it is (model and input size, the set it learned from, epochs)
    assert card["name"] == f"fer-resnet{run.config.image_size}-toy-e{run.config.epochs}" and "--name" not in card["ship_command"]
    # shipping again replaces its own files; a folder of other files is refused
    ship_run(run.id, [("toy test", ds_path)], dest=dest)
    assert "replaces" not in shipped.read_card(dest)  # the same run again: no lineage of its own
    # shipped over another model, the card names it (and what that one had replaced), newest first
    older = dict(card, name="older", run_id="older-run", replaces=[{"name": "oldest", "run_id": "oldest-run",
                                                                       "holdout": 0.5, "tests": []}])
    (dest / shipped.CARD).write_text(json.dumps(older))
    card = ship_run(run.id, [("toy test", ds_path)], dest=dest)
    assert [r["run_id"] for r in card["replaces"]] == ["older-run", "oldest-run"]
    assert card["replaces"][0] == {"name": "older", "run_id": "older-run", "holdout": older["holdout"]["accuracy"],
                                   "tests": [{"name": "toy test", "accuracy": older["tests"]["toy test"]["accuracy"]},
                                                                                  {"name": "a second set", "accuracy": older["tests"]["a second set"]["accuracy"]}]}
    text = (dest / shipped.CARD_MD).read_text()
    assert text == render_card(shipped.read_card(dest))
    assert text.index("## Replaces") < text.index("older (run `older-run`)") < text.index("oldest (run `oldest-run`)")
    assert ship_run(run.id, [("toy test", ds_path)], dest=dest)["replaces"] == card["replaces"]  # kept when shipped again
    # a damaged card (what shipped.load needs, the rest junk) costs its lineage, not the new ship
    (dest / shipped.CARD).write_text(json.dumps(dict(older, tests="junk", holdout=None, replaces=[{"holdout": "x", "tests": 3}, 7],
                                                     test_order=None)))
    card = ship_run(run.id, [("toy test", ds_path)], dest=dest)
    assert card["replaces"] == [{"name": "older", "run_id": "older-run", "holdout": None, "tests": []},
                                {"name": None, "run_id": None, "holdout": "x", "tests": []}]
    assert "- older (run `older-run`): holdout -." in (dest / shipped.CARD_MD).read_text()
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(FerError, match="other files"):
        ship_run(run.id, [("toy test", ds_path)], dest=other)
    assert (other / "mine.txt").read_text() == "x"


def test_a_run_on_two_sets_ships_with_each_set_on_its_card(tmp_path, capsys):
    """A mixture run (fer train --data A --data B) ships with --data A --data B: the card lists each
    set with its faces and its own held-out accuracy, the terms name both, the rebuild commands
    give both; without --data the refusal is one line that says how to give them."""
    from conftest import write_official_layout
    from fer_utils.cli import main
    from fer_utils.training.store import RunStore

    a = write_report_layout(tmp_path / "a", per_class=(6, 2), seed=1)
    b = write_official_layout(tmp_path / "b", per_class=(4, 3), seed=2)
    assert main(["train", "--preset", "resnet-smoke", "--data", str(a), "--data", str(b), "--mix", "equal",
                 "--epoch-faces", "40"]) == 0
    (run,) = RunStore().runs()
    capsys.readouterr()
    dest = tmp_path / "weights"
    tests = ["--test", f"A test={a}", "--test", f"B test={b}"]
    assert main(["ship", run.id, *tests, "--dest", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained on several sets" in err and "--data" in err and not dest.exists()
    assert main(["ship", run.id, "--data", str(b), "--data", str(a), *tests, "--dest", str(dest)]) == 2  # wrong order
    assert "in its order" in capsys.readouterr().err
    assert main(["ship", run.id, "--data", str(a), "--data", str(tmp_path / "nowhere"), *tests, "--dest", str(dest)]) == 2
    assert "nowhere: no such file or folder" in capsys.readouterr().err
    assert main(["ship", run.id, "--data", str(a), "--data", str(b), *tests, "--dest", str(dest), "--name", "toy-mix"]) == 0
    card = shipped.read_card(dest)
    on = card["trained_on"]
    assert [t["name"] for t in on["sets"]] == ["A", "B"] and on["name"] == "A + B, train splits"
    ev = run.evaluation(run.epochs_done)
    assert sum(t["train_faces"] for t in on["sets"]) == on["train_faces"] and sum(t["held_out"] for t in on["sets"]) == on["held_out"]
    assert [t["held_out"] for t in on["sets"]] == [ev["holdout_by_source"][k]["n"] for k in ("a", "b")]
    by_set = card["holdout"]["by_set"]
    assert [by_set[t["name"]]["n"] for t in on["sets"]] == [t["held_out"] for t in on["sets"]]
    n = sum(v["n"] for v in by_set.values())
    assert n == card["holdout"]["n"]
    assert abs(sum(v["accuracy"] * v["n"] for v in by_set.values()) / n - card["holdout"]["accuracy"]) < 1e-9
    assert "from A and B, whose terms all allow non-commercial research use only" in card["terms"]
    assert card["training"]["command"].endswith(f"--data {a.name} --data {b.name} --mix equal --epoch-faces 40 --epochs "
                                                f"{card['training']['epochs']}")
    assert f"fer ship {run.id} --data {a.name} --data {b.name} --test" in card["ship_command"]
    text = (dest / shipped.CARD_MD).read_text()
    assert text == render_card(card) == render_card(shipped.read_card(dest))  # JSON's key order does not matter
    for needed in ("- A, train split", "- B, train split", "Mixed (equal): 40 faces an epoch, an equal share from each set",
                   "(A ", "; B ", "(A and B)"):
        assert needed in text, needed


def test_a_damaged_shipped_file_is_one_line(tmp_path, smoke_run):
    from fer_utils.apply.ship import ship_run

    run, ds_path = smoke_run
    dest = tmp_path / "weights"
    ship_run(run.id, [("toy test", ds_path)], dest=dest)
    data = (dest / shipped.WEIGHTS).read_bytes()
    (dest / shipped.WEIGHTS).write_bytes(data[:-10] + bytes(10))
    with pytest.raises(FerError, match="SHA-256 differs"):
        shipped.load(dest)
    (dest / shipped.CARD).write_text("[1, 2")
    with pytest.raises(FerError, match="card.json: not valid JSON"):
        shipped.load(dest)
    with pytest.raises(FerError, match="no shipped model"):
        shipped.load(tmp_path / "nothing")


# --------------------------------------------------------------------------------------------
# The model that ships


@needs_shipped
def test_the_shipped_files_are_what_the_card_says():
    card = shipped.read_card()
    data = (SHIPPED / shipped.WEIGHTS).read_bytes()
    assert len(data) <= MAX_BYTES and len(data) == card["weights"]["bytes"]
    assert shipped.digest(data) == card["weights"]["sha256"]
    assert (SHIPPED / shipped.CARD_MD).read_text() == render_card(card)
    p = card["holdout"]["precision"]
    assert card["weights"]["dtype"] == ("float16" if abs(p["float16_accuracy"] - p["float32_accuracy"]) <= FP16_TOLERANCE else "float32")
    assert not card["trained_on"]["synthetic"] and "non-commercial research" in card["terms"]
    text = (SHIPPED / shipped.CARD_MD).read_text()
    for needed in ("## Intended use", "Out of scope", "## Training data", "## Accuracy", "95%", "confusion",
                   "## Known weaknesses", "## Rebuild it"):
        assert needed in text, needed
    net, names = shipped.load()
    assert tuple(names) == tuple(card["class_names"]) and net.count_params() == card["parameters"]


@needs_shipped
def test_a_score_made_with_shipped_says_which_model_shipped():
    """``fer evaluate shipped`` (and an ensemble with it) records the card's name, run and SHA-256,
    so a number measured with a model shipped before can be told from one measured with this one."""
    from fer_utils.apply.ensemble import EnsemblePredictor
    from fer_utils.apply.evaluate import load_predictor

    card = shipped.read_card()
    want = {"name": card["name"], "run_id": card["run_id"], "sha256": card["weights"]["sha256"]}
    one = load_predictor("shipped")
    assert one.describe()["shipped"] == want == shipped.identity()
    assert EnsemblePredictor([one, one], "shipped+again").describe()["shipped"] == want


@needs_shipped
def test_the_benchmarks_quoted_with_the_shipped_model_were_measured_with_it():
    """The committed benchmark files that docs quote as "the shipped model" name the model that
    ships now: shipping another one without measuring them again fails here."""
    root = Path(__file__).resolve().parents[1]
    card = shipped.read_card()
    for name in ("detect.json", "detect_loose.json"):  # docs/photos.md
        got = json.loads((root / "benchmarks" / name).read_text())["model"]
        assert got.startswith(f"the shipped model ({card['name']},"), f"benchmarks/{name}: run bench_detect.py again"
    peers = sorted((root / "benchmarks" / "loose" / "out").glob("peer-*.json"))
    assert len(peers) == 4
    for f in peers:
        assert json.loads(f.read_text())["a"]["model"].get("shipped", {}).get("run_id") == card["run_id"], f.name


@needs_shipped
@pytest.mark.realdata
@pytest.mark.slow
def test_the_cards_numbers_are_measured_again_on_the_real_test_sets():
    """Every test set on the card that is at hand is scored again with the shipped file: the same
    faces right, the same confusion matrix; and the holdout accuracy that chose it."""
    from fer_utils.apply.evaluate import KerasPredictor, evaluate
    from fer_utils.data.mixture import load_many, sources_of
    from fer_utils.training.config import RunConfig
    from fer_utils.training.trainer import holdout_split, split_for

    card = shipped.read_card()
    net, names = shipped.load()
    pred = KerasPredictor.of(net, names, "shipped")
    checked = 0
    for name, t in card["tests"].items():
        path = paths.SHARED_DATA / t["source"]
        if not path.exists():
            continue
        r = evaluate(pred, path)
        assert r["data"]["fingerprint"] == t["fingerprint"], name
        assert (r["correct"], r["n"], r["confusion"]) == (t["correct"], t["n"], t["confusion"]), name
        checked += 1
    if not checked:
        pytest.skip(f"none of the card's test sets is in {paths.SHARED_DATA}")
    on = card["trained_on"]
    sources = [paths.SHARED_DATA / t["source"] for t in on.get("sets", [])] or [paths.SHARED_DATA / on["source"]]
    train = load_many([str(p) for p in sources], image_size=card["config"]["image_size"], verbose=False)
    assert train.fingerprint == card["config"]["data"]
    cfg = RunConfig.from_dict(card["config"])
    _, _, x_val, y_val, _, _ = split_for(cfg, train)
    right = pred.predict(x_val).argmax(1) == y_val
    assert abs(float(right.mean()) - card["holdout"]["accuracy"]) < 1e-9
    src = sources_of(train, "train")[holdout_split(cfg, train)[1]]
    for i, t in enumerate(on.get("sets", [])):  # a run on several sets: each set's own held-out faces
        v = card["holdout"]["by_set"][t["name"]]
        assert (int((src == i).sum()), float(right[src == i].mean())) == (v["n"], v["accuracy"]), t["name"]


@needs_shipped
@pytest.mark.slow
def test_export_onnx_and_tflite_agree_with_keras(tmp_path):
    pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings

    from fer_utils.apply.export import export_model

    net, _ = shipped.load()
    side = int(net.input_shape[1])
    x = _faces(n=5, side=side)
    ref = np.asarray(net.predict_on_batch(x))
    onnx_path = export_model("shipped", "onnx", tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.abs(got - ref).max() < 1e-4
    assert json.loads((tmp_path / "m.onnx.classes.json").read_text())["class_names"] == list(shipped.read_card()["class_names"])
    tfl = export_model("shipped", "tflite", tmp_path / "m.tflite")
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(tfl))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for face in x:
        interp.set_tensor(inp["index"], face[None])
        interp.invoke()
        rows.append(interp.get_tensor(out["index"])[0])
    assert np.abs(np.array(rows) - ref).max() < 1e-4
    with pytest.raises(FerError, match="already exists"):
        export_model("shipped", "onnx", onnx_path)


def test_export_checks_its_destination_before_loading(tmp_path):
    from fer_utils.apply.export import check_out

    with pytest.raises(FerError, match="ends in .onnx"):
        check_out("onnx", tmp_path / "m.tflite")
    with pytest.raises(FerError, match="does not exist"):
        check_out("tflite", tmp_path / "no" / "m.tflite")
    (tmp_path / "m.onnx").write_text("mine")
    with pytest.raises(FerError, match="already exists"):
        check_out("onnx", tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_text() == "mine"
