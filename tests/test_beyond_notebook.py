"""The beyond profiles, the choice of the model that sorts, and 07_beyond through papermill."""

from __future__ import annotations

import json

import pytest

from conftest import run_fer
from fer_utils.apply import choose
from fer_utils.study import beyond
from fer_utils.study import choice as best_model
from fer_utils.study import pipeline as study
from fer_utils.study.protocol import BEYOND_NOTEBOOKS, STUDY_NOTEBOOKS
from fer_utils.study.profiles import get_profile
from fer_utils.errors import ConfigError, FerError


def test_profiles_list_their_notebooks():
    assert get_profile("smoke").notebooks == STUDY_NOTEBOOKS and not get_profile("smoke").models
    assert get_profile("beyond").notebooks[-1] == "07_beyond" and get_profile("beyond").models == ("resnet",)
    assert study.check_notebooks(None, "beyond-smoke")[-1] == "07_beyond"
    assert "07_beyond" not in study.check_notebooks(None, "demo")
    assert BEYOND_NOTEBOOKS[:-1] == STUDY_NOTEBOOKS
    with pytest.raises(ConfigError, match="unknown notebook '07_beyond'"):
        study.check_notebooks("07_beyond", "smoke")


def test_beyond_profile_fits_the_cpu_budget():
    """One seed of the beyond recipe: the published 60-epoch run of this recipe (2-core CPU)
    trained in under 2 hours, and the profile still asks for that recipe."""
    from fer_utils import paths
    from fer_utils.training.store import RunStore

    cfg = beyond.preset_config("resnet", data="")
    runs = RunStore(paths.PROJECT_DIR / "published" / "tenth-test-cpu" / "runs").runs(model="resnet")
    run = next(r for r in runs if r.config.epochs == 60)
    assert run.config.replace(data="") == cfg and cfg.image_size == 64
    cost = run.metrics["cost"]
    assert cost["epochs"] == cfg.epochs and cost["train_seconds"] < 2 * 3600
    assert beyond.preset_config("resnet-smoke", "", seed=3).seed == 3 and beyond.image_sizes("demo") == {}


def test_engine_flags_are_checked():
    assert study.check_gpus("all") == "all" and study.check_gpus("2") == 2 and study.check_gpus(None) is None
    for bad in ("0", "x", -1):
        with pytest.raises(ConfigError, match="--gpus"):
            study.check_gpus(bad)
    with pytest.raises(ConfigError, match="--threads 0"):
        study.check_arguments(profile="smoke", threads=0)
    with pytest.raises(ConfigError, match="--workers-per-gpu"):
        study.check_arguments(profile="smoke", workers_per_gpu="2")


def test_engine_flags_reach_train_plan(report_tree, monkeypatch):
    import fer_utils.training.engine as engine

    seen = {}
    monkeypatch.setattr(engine, "train_plan", lambda p, **kw: seen.update(kw))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # --gpus all is checked against the visible GPUs first
    monkeypatch.setattr(study, "run_table", lambda *a, **k: (_ for _ in ()).throw(SystemExit("stop")))
    with pytest.raises(SystemExit):
        study.run_tables(profile="smoke", data=str(report_tree), tables="1", gpus="all", workers_per_gpu=2, threads=3)
    assert seen["gpus"] == "all" and seen["workers_per_gpu"] == 2 and seen["threads"] == 3


def _fake_run(root, name, *, holdout, test, data="fp", beyond_model=True, epochs=2):
    d = root / name
    d.mkdir(parents=True)
    cfg = beyond.preset_config("resnet-smoke", data)
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    ev = {"holdout": {"accuracy": holdout}, "test": {"accuracy": test, "ci95": [test - 0.1, test + 0.1], "n": 70,
                                                     "mean_class_accuracy": test}}
    (d / "metrics.json").write_text(json.dumps({"evaluations": {str(epochs): ev}, "cost": {}}))
    (d / f"model-e{epochs:04d}.keras").write_bytes(b"x")
    return d


def test_best_model_picks_by_holdout_never_test(tmp_path, monkeypatch):
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: {
        "name": "cnn", "kind": "report_cnn", "path": tmp_path / "cnn.keras", "data": "fp", "holdout_accuracy": None,
        "test_accuracy": 0.99, "test_ci95": [0.9, 1.0], "n_test": 70})
    root = tmp_path / "runs"
    _fake_run(root, "beyond-a", holdout=0.60, test=0.90)
    _fake_run(root, "beyond-b", holdout=0.70, test=0.50)
    _fake_run(root, "beyond-c", holdout=0.95, test=0.95, data="other")  # other data: never a candidate
    pick = best_model.best_model("smoke", results_dir=tmp_path)
    assert pick["path"].parent.name == "beyond-b" and "holdout" in pick["rule"]
    line = choose.sorted_by_line(pick)
    assert "beyond-b" in line and "measured test accuracy 50.0%" in line
    choose.write_sorted_by(tmp_path / "out", pick)
    assert choose.read_sorted_by(tmp_path / "out")["line"] == line


def test_best_model_falls_back_to_the_final_model_and_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: None)
    with pytest.raises(FerError, match="no trained model for profile 'smoke'.*--model FILE.keras"):
        best_model.best_model("smoke", results_dir=tmp_path)
    final = {"name": "cnn", "kind": "report_cnn", "path": tmp_path / "cnn.keras", "data": "fp", "holdout_accuracy": None,
             "test_accuracy": None, "test_ci95": None, "n_test": None}
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: final)
    pick = best_model.best_model("smoke", results_dir=tmp_path)
    assert pick["name"] == "cnn" and "no candidate has a holdout" in pick["rule"]
    assert "test accuracy not measured" in choose.sorted_by_line(pick)


def _histories(home) -> dict:
    """run id -> history.csv without its seconds column, for every history under results/."""
    return {h.parent.name: [line.rsplit(",", 1)[0] for line in h.read_text().splitlines()]
            for h in sorted((home / "results").rglob("history.csv"))}


@pytest.mark.slow
def test_fer_run_trains_both_models_on_two_workers_as_in_one_process(report_tree, tmp_path):
    """`fer run --profile beyond-smoke` with Table 4 and 07_beyond: the report CNN's runs AND the
    resnet runs go through the one engine into the one store; on two Dask workers they get the
    histories of the sequential run (every column but the seconds; one intra-op thread in
    both, since the thread count is part of the numbers); notebook 07 then compares them."""
    args = ("run", "--profile", "beyond-smoke", "--data", str(report_tree), "--notebooks", "04_batch_size,07_beyond")
    one_thread = {"TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    seq = run_fer(*args, home=tmp_path / "seq", env=one_thread, timeout=900)
    assert seq.returncode == 0, seq.stdout[-3000:] + seq.stderr[-3000:]
    par = run_fer(*args, "--workers", "2", "--threads", "1", home=tmp_path / "par", timeout=900)
    assert par.returncode == 0, par.stdout[-3000:] + par.stderr[-3000:]
    assert "Dask: 2 worker(s)" in par.stdout
    hist = _histories(tmp_path / "par")
    assert hist == _histories(tmp_path / "seq")
    # one store: every history lies in results/runs/, both kinds among them
    assert {h.parent.parent for h in (tmp_path / "par" / "results").rglob("history.csv")} == {tmp_path / "par" / "results" / "runs"}
    assert any(k.startswith("resnet-") for k in hist) and any(k.startswith("d") for k in hist)
    runs = run_fer("runs", home=tmp_path / "par")
    assert runs.returncode == 0 and "\tresnet\t" in runs.stdout and "\treport_cnn\t" in runs.stdout
    nb = json.loads((tmp_path / "par" / "results" / "executed" / "07_beyond.ipynb").read_text())
    text = json.dumps(nb["cells"])
    assert "exact McNemar p" in text and "image/png" in text
    # fer publish takes both kinds into one runs/ folder; the report reads the resnet run from there
    dest = tmp_path / "published"
    pub = run_fer("publish", str(dest), "--profile", "beyond-smoke", "--results", str(tmp_path / "par" / "results"), home=tmp_path / "par")
    assert pub.returncode == 0, pub.stderr[-2000:]
    index = json.loads((dest / "published.json").read_text())
    resnet = [k for k in hist if k.startswith("resnet-")]
    assert list(index["models"]) == resnet and all((dest / "runs" / k / "history.csv").exists() for k in resnet)
    from fer_utils.study.report import beyond_summary

    assert list(beyond_summary(dest).index) == resnet


def test_report_sections_read_the_sorting_output_and_the_beyond_runs(tmp_path):
    from fer_utils.study import report

    assert report.beyond_summary(tmp_path) is None and "fer run --profile beyond" in report.BEYOND_HOWTO
    _fake_run(tmp_path / "runs", "beyond-a", holdout=0.6, test=0.8)
    df = report.beyond_summary(tmp_path)
    assert list(df.index) == ["beyond-a"] and df.loc["beyond-a", "95% interval"] == "0.7000-0.9000"
    out = tmp_path / "organized"
    assert report.sorting_section(out) is None
    out.mkdir()
    (out / "predictions.csv").write_text("source,destination,predicted,confidence,p_Happiness,p_Sadness\n"
                                         "1_0_0_a.jpg,Happiness/1_0_0_a.jpg,Happiness,0.9,0.9,0.1\n"
                                         "2_0_0_b.jpg,Happiness/2_0_0_b.jpg,Happiness,0.8,0.8,0.2\n"
                                         "30_0_0_c.jpg,Sadness/30_0_0_c.jpg,Sadness,0.6,0.4,0.6\n"
                                         "40_0_0_d.jpg,Sadness/40_0_0_d.jpg,Sadness,0.5,0.5,0.5\n")
    choose.write_sorted_by(out, choose.named_model(tmp_path / "m.keras"))
    sec = report.sorting_section(out)
    assert dict(sec["counts"]) == {"Happiness": 2, "Sadness": 2} and "95% interval" in sec["infant"]
    assert sec["sorted_by"].startswith("Sorted by the model") and "test accuracy not measured" in sec["sorted_by"]


def test_choice_for_names_the_rule_of_the_best_model_or_the_user(tmp_path, monkeypatch):
    picked = {"path": tmp_path / "m.keras", "rule": "best holdout accuracy", "kind": "final"}
    monkeypatch.setattr(best_model, "best_model", lambda profile, results_dir=None: picked)
    assert best_model.choice_for(tmp_path / "m.keras", "demo") is picked
    other = best_model.choice_for(tmp_path / "other.keras", "demo")
    assert other["rule"] == "named by the user"


def test_a_damaged_accuracy_is_named_not_compared(tmp_path, monkeypatch):
    """A metrics.json whose holdout accuracy became a string (an edit): one line naming the file,
    where the choice used to fail comparing a str with a float."""
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: None)
    _fake_run(tmp_path / "runs", "beyond-a", holdout="0.9", test=0.5)
    _fake_run(tmp_path / "runs", "beyond-b", holdout=0.7, test=0.5)
    with pytest.raises(FerError, match=r"beyond-a/metrics.json: the holdout accuracy should be a number from 0 to 1, got '0.9'"):
        best_model.best_model("smoke", results_dir=tmp_path)
