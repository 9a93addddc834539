"""Training on several data sets at once (fer_utils.data.mixture): faces tagged by set, a holdout
from each set, the epoch's mix, each set's test faces scored apart; one set is unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import write_official_layout, write_report_layout
from fer_utils.data import datasets
from fer_utils.data.mixture import combine, epoch_order, load_many, sources_of
from fer_utils.errors import ConfigError, FerError
from fer_utils.training.config import RunConfig


@pytest.fixture
def two_sets(tmp_path):
    a = write_report_layout(tmp_path / "a", per_class=(6, 2), seed=1)
    b = write_official_layout(tmp_path / "b", per_class=(4, 3), seed=2)
    return a, b


def test_combine_tags_every_face_with_its_set(two_sets):
    a, b = two_sets
    da, db = (datasets.load(p, image_size=24, verbose=False) for p in (a, b))
    mix = load_many([a, b], image_size=24, verbose=False)
    assert len(mix.y_train) == len(da.y_train) + len(db.y_train) and len(mix.y_test) == len(da.y_test) + len(db.y_test)
    assert sources_of(mix, "train").tolist() == [0] * len(da.y_train) + [1] * len(db.y_train)
    assert sources_of(mix, "test").tolist() == [0] * len(da.y_test) + [1] * len(db.y_test)
    assert np.array_equal(mix.x_train[: len(da.y_train)], da.x_train) and np.array_equal(mix.y_test[len(da.y_test):], db.y_test)
    assert mix.source_names == ("a", "b") and mix.fingerprint not in (da.fingerprint, db.fingerprint)
    assert load_many([a, b], image_size=24, verbose=False).fingerprint == mix.fingerprint  # stable
    assert load_many([b, a], image_size=24, verbose=False).fingerprint != mix.fingerprint  # the order is part of it
    assert load_many([a], image_size=24, verbose=False).fingerprint == da.fingerprint and not da.source_names


def test_a_train_only_set_and_a_plain_class_tree_train(tmp_path, two_sets):
    import shutil

    a, _ = two_sets
    plain = tmp_path / "plain"
    shutil.copytree(a / "class" / "train", plain)  # <Class>/ folders, no splits
    mix = load_many([a, plain], image_size=24, verbose=False)
    n_a = len(datasets.load(a, image_size=24, verbose=False).y_train)
    assert len(mix.y_train) == 2 * n_a and int((sources_of(mix, "test") == 1).sum()) == 0
    with pytest.raises(FerError, match="different sizes"):
        combine([datasets.load(a, image_size=24, verbose=False), datasets.load(a, image_size=16, verbose=False)])


def test_one_set_keeps_its_run_ids_and_a_mix_is_part_of_the_config():
    cfg = RunConfig(data="f" * 64, model="resnet")
    assert "mix" not in cfg.to_dict()
    eq = cfg.replace(mix="equal")
    assert eq.to_dict()["mix"] == "equal" and eq.run_id != cfg.run_id
    assert RunConfig.from_dict(json.loads(json.dumps(eq.to_dict()))) == eq
    with pytest.raises(ConfigError, match="mix 'half'"):
        cfg.replace(mix="half")


def test_the_holdout_comes_from_each_set_and_class(two_sets):
    from fer_utils.training.trainer import holdout_split

    mix = load_many(list(two_sets), image_size=24, verbose=False)
    cfg = RunConfig(data=mix.fingerprint, model="resnet", selection="holdout", val_fraction=0.25)
    _, held = holdout_split(cfg, mix)
    src, y = sources_of(mix, "train")[held], mix.y_train[held]
    for s in (0, 1):
        assert sorted(set(y[src == s].tolist())) == list(range(7))  # every class of every set held out


def test_an_equal_mix_gives_each_set_the_same_share():
    rng = np.random.default_rng(0)
    src = np.array([0] * 90 + [1] * 10)
    o = epoch_order(src, "equal", rng)
    assert len(o) == 100 and int((src[o] == 1).sum()) == 50 and int((src[o] == 0).sum()) == 50
    assert len(set(o[src[o] == 0].tolist())) == 50  # drawn without replacement where the set has enough
    p = epoch_order(src, "proportional", np.random.default_rng(3))
    assert np.array_equal(p, np.random.default_rng(3).permutation(100))  # what one set always did


@pytest.mark.slow
def test_a_mixture_trains_and_scores_each_set_apart(two_sets, capsys):
    from fer_utils.cli import main
    from fer_utils.training.store import RunStore

    a, b = two_sets
    rc = main(["train", "--preset", "resnet-smoke", "--data", str(a), "--data", str(b), "--mix", "equal"])
    assert rc == 0, capsys.readouterr().err
    (run,) = RunStore().runs()
    assert run.config.mix == "equal"
    ev = run.evaluation(run.epochs_done)
    assert set(ev["test_by_source"]) == {"a", "b"} and set(ev["holdout_by_source"]) == {"a", "b"}
    n_test = len(load_many([a, b], image_size=32, verbose=False).y_test)
    assert sum(v["n"] for v in ev["test_by_source"].values()) == ev["test"]["n"] == n_test
    assert main(["train", "--preset", "resnet-smoke", "--data", str(a), "--mix", "equal"]) == 2
    assert "--mix" in capsys.readouterr().err


def test_epoch_faces_sets_an_epochs_length_apart_from_the_data():
    cfg = RunConfig(data="f" * 64, model="resnet")
    assert "epoch_faces" not in cfg.to_dict()  # every run before it keeps its id
    fixed = cfg.replace(epoch_faces=500)
    assert fixed.to_dict()["epoch_faces"] == 500 and fixed.run_id != cfg.run_id
    assert RunConfig.from_dict(json.loads(json.dumps(fixed.to_dict()))) == fixed
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ConfigError, match="epoch_faces"):
            cfg.replace(epoch_faces=bad)
    src = np.array([0] * 30 + [1] * 10)
    o = epoch_order(src, "proportional", np.random.default_rng(0), size=100)
    assert len(o) == 100 and np.bincount(o, minlength=40).min() >= 2  # every face twice before any a third time
    assert np.bincount(o, minlength=40).max() == 3
    short = epoch_order(src, "proportional", np.random.default_rng(0), size=15)
    assert len(short) == 15 and len(set(short.tolist())) == 15
    eq = epoch_order(src, "equal", np.random.default_rng(0), size=64)
    assert len(eq) == 64 and int((src[eq] == 1).sum()) == 32 == int((src[eq] == 0).sum())


@pytest.mark.slow
def test_runs_on_sets_of_different_sizes_train_on_as_many_faces(two_sets, capsys):
    from fer_utils.cli import main
    from fer_utils.training.store import RunStore

    a, b = two_sets
    for data in ([a], [b], [a, b]):
        argv = ["train", "--preset", "resnet-smoke", "--epoch-faces", "20"]
        assert main(argv + [x for p in data for x in ("--data", str(p))]) == 0, capsys.readouterr().err
    runs = RunStore().runs()
    assert len(runs) == 3 and {r.config.epoch_faces for r in runs} == {20}
    out = capsys.readouterr().out
    assert out.count("20 faces per epoch") == 3
    for r in runs:  # the cost is the same whatever the set's size
        assert r.metrics["cost"]["images_per_epoch"] == 20



@pytest.mark.slow
def test_seeds_of_a_mixture_train_through_the_engine_as_they_train_alone(two_sets, capsys, monkeypatch):
    """fer train --seeds on Dask workers (the path --gpus takes on a GPU box) gives each seed the
    run id and history fer train --seed gives it in this process: the engine loads the mixture as fer train does."""
    from fer_utils import paths
    from fer_utils.cli import main
    from fer_utils.training.rundir import read_history

    a, b = two_sets
    argv = ["train", "--preset", "resnet-smoke", "--data", str(a), "--data", str(b), "--mix", "equal", "--epochs", "2"]
    alone = paths.RUNS_DIR
    for seed in ("0", "1"):
        assert main(argv + ["--seed", seed]) == 0, capsys.readouterr().err
    capsys.readouterr()
    monkeypatch.setattr(paths, "RUNS_DIR", alone.parent / "_engine_runs")
    threads = str(os.cpu_count() or 1)  # this process's intra-op threads: the same numbers, bit for bit
    assert main(argv + ["--seeds", "0,1", "--workers", "2", "--threads", threads]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "dask local cluster" in out and out.count("Final row (2 epochs") == 2
    assert "train: 100%" in err  # the bar of fer train's runs (a study's says study)
    ids = sorted(d.name for d in paths.RUNS_DIR.iterdir() if d.is_dir())
    assert len(ids) == 2 and ids == sorted(d.name for d in alone.iterdir() if d.is_dir())
    for run_id in ids:
        there, here = read_history(paths.RUNS_DIR / run_id), read_history(alone / run_id)
        assert [r["epoch"] for r in there] == [r["epoch"] for r in here] == [1, 2]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert [r[key] for r in there] == [r[key] for r in here], key
    # run again: every epoch is in the store, nothing trains
    assert main(argv + ["--seeds", "0,1"]) == 0
    assert "Trained 0 epochs" in capsys.readouterr().out


def test_fer_train_refuses_a_run_folder_or_one_file_for_several_runs(two_sets, tmp_path, capsys, monkeypatch):
    from fer_utils.cli import main

    a, b = two_sets
    argv = ["train", "--preset", "resnet-smoke", "--data", str(a), "--data", str(b)]
    assert main(argv + ["--seeds", "0,1", "--save", str(tmp_path / "m.keras")]) == 2
    assert "--save" in capsys.readouterr().err
    assert main(argv + ["--workers", "2", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--run-dir" in capsys.readouterr().err
    assert main(argv + ["--workers-per-gpu", "2"]) == 2 and "--gpus" in capsys.readouterr().err
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU here: said before the data loads
    assert main(argv + ["--gpus", "1"]) == 2
    out, err = capsys.readouterr()
    assert "--gpus 1: 0 GPU(s) visible" in err and "Loaded" not in out
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(argv + ["--seeds", "0", "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    out, err = capsys.readouterr()
    assert "nothing answers there" in err and "Loaded" not in out
    with pytest.raises(SystemExit) as e:  # one or the other
        main(argv + ["--seeds", "0,1", "--seed", "2"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not any(tmp_path.glob("*.keras"))


ROOT = Path(__file__).resolve().parents[1]


def _benchmark(name: str):
    """The script benchmarks/<name>.py as a module (the tables and figures docs/results.md shows)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_results_page_quotes_the_mixture_tables_as_they_rebuild():
    """docs/results.md's mixture section is benchmarks/mixture_table.py's output on the committed
    run files and comparisons (benchmarks/mixture/), line for line: numbers rebuilt, not typed."""
    root, mod = ROOT, _benchmark("mixture_table")
    page = (root / "docs" / "results.md").read_text()
    text = mod.tables()
    missing = [line for line in text.splitlines() if line.strip() and line not in page]
    assert not missing, f"docs/results.md lacks {len(missing)} line(s) of the mixture tables, e.g. {missing[0]!r}"
    assert "DROP at this cost" in text or "KEEP at this cost" in text


def test_the_cost_curve_is_drawn_from_the_committed_comparisons(tmp_path):
    """benchmarks/mixture_table.py --figure: each regime's points by faces seen, each score the
    committed comparison's; the PNG that docs/results.md shows is the one these files draw."""
    from PIL import Image

    root, mod = ROOT, _benchmark("mixture_table")
    pts = mod.curve()
    assert {"RAF-DB only", "both", "FER2013 only"} <= set(pts)
    for regime, points in pts.items():
        faces = [p[0] for p in points]
        assert faces == sorted(faces) and len(set(faces)) == len(faces), regime
    _, scores, _ = mod.load()
    assert pts["RAF-DB only"][0][2] == scores[("a9d553f83d41", "raf-basic", "as-is")]
    assert [p[0] for p in pts["both"]][:2] == [110_440, 220_880]
    out = mod.figure(tmp_path / "curve.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600
    assert "benchmarks/mixture/cost_curve.png" in (root / "docs" / "results.md").read_text()
    assert (root / "benchmarks" / "mixture" / "cost_curve.png").is_file()


@pytest.mark.parametrize("folder", ["seeds", "mixture/seeds", "mixture/seeds60"])
def test_the_results_page_quotes_the_seed_tables_and_each_seed_scores_as_trained(folder):
    """docs/results.md's seeds sections are benchmarks/seeds_table.py's output on each recipe's
    seeds folder (RAF-DB only; the mixture at 40 epochs; the shipped mixture at 60), line for line; each seed's fer evaluate score
    equals what its training recorded (test, per set for the mixture, and test with flip TTA where
    training scored it), and seed 0's equals its card's (its shipped float16 file)."""
    root, mod = ROOT, _benchmark("seeds_table")
    folder = root / "benchmarks" / folder
    page = (root / "docs" / "results.md").read_text()
    text = mod.tables(folder)
    missing = [line for line in text.splitlines() if line.strip() and line not in page]
    assert not missing, f"docs/results.md lacks {len(missing)} line(s) of the seed tables, e.g. {missing[0]!r}"
    got = mod.load(folder)
    runs, scores = got["runs"], got["scores"]
    assert sorted(runs) == [0, 1, 2] and "ensemble of the 3 seeds" in text
    for s in (1, 2):
        by_source = runs[s]["test_by_source"]
        for data in ("raf-basic", "fer2013") if by_source else ("raf-basic",):
            recorded = by_source[data] if by_source else runs[s]["test"]
            assert scores[(s, data, "none")]["correct"] == recorded["correct"], (s, data)
            assert scores[(s, data, "none")]["confusion"] == recorded["confusion"], (s, data)
        if not by_source:  # a one-set run's test with flip TTA is its one set's
            assert scores[(s, "raf-basic", "flip")]["correct"] == runs[s]["test_tta"]["correct"]
    card = json.loads((folder / "seed0-card.json").read_text())
    for name, data in (("RAF-DB test", "raf-basic"), ("FER2013 PublicTest", "fer2013")):
        assert scores[(0, data, "none")]["accuracy"] == pytest.approx(card["tests"][name]["accuracy"])
    for (data, tta), c in got["pairs"].items():  # the ensemble's members are the three seeds
        assert len(c["b"]["model"]["members"]) == 3 and c["b"]["tta"] == (None if tta == "none" else tta)
        assert set(c["b"]["model"]["model"].split("+")[1:]) == {runs[1]["id"], runs[2]["id"]}


def test_the_results_page_quotes_the_loose_framing_tables_and_the_baseline_is_the_committed_run():
    """docs/results.md's loosely-framed section is benchmarks/loose_table.py's output on
    benchmarks/loose/out/, line for line; its baseline, trained again, scored on RAF-DB test as
    given exactly what the committed run of the same id recorded; the held-out faces are each
    set's seeded 10% (1,226 and 2,794), the same for both runs and both views."""
    root, mod = ROOT, _benchmark("loose_table")
    page = (root / "docs" / "results.md").read_text()
    text = mod.tables()
    missing = [line for line in text.splitlines() if line.strip() and line not in page]
    assert not missing, f"docs/results.md lacks {len(missing)} line(s) of the loose-framing tables, e.g. {missing[0]!r}"
    got = mod.load()
    assert {r["faces"] for (s, _), r in got["holdout"].items() if s == "raf-basic"} == {1226}
    assert {r["faces"] for (s, _), r in got["holdout"].items() if s == "fer2013"} == {2794}
    base = got["test"][("raf-basic", "as-is")]
    assert "3606e30baedf" in base["a"]["model"]["model"] and "d617c282a387" in base["b"]["model"]["model"]
    _, scores, _ = _benchmark("mixture_table").load()
    committed = scores[("3606e30baedf", "raf-basic", "as-is")]
    assert base["a"]["correct"] == committed["correct"] and base["a"]["confusion"] == committed["confusion"]
    assert got["test"][("raf-basic", "loose")]["b"]["view"] == "loose" and ("DO NOT CARRY" in text or "CARRY INTO" in text)
