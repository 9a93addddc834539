"""The beyond profiles, the choice of the model that sorts, and 07_beyond through papermill."""

from __future__ import annotations

import json

import pytest

from conftest import run_fer
from fer_utils.apply import choose as best_model
from fer_utils.study import pipeline as study
from fer_utils.training.config import BEYOND_NOTEBOOKS, STUDY_NOTEBOOKS, get_profile
from fer_utils.errors import ConfigError, FerError


def test_profiles_list_their_notebooks():
    assert get_profile("smoke").notebooks == STUDY_NOTEBOOKS and not get_profile("smoke").beyond
    assert get_profile("beyond").notebooks[-1] == "07_beyond" and get_profile("beyond").beyond == "default"
    assert study.check_notebooks(None, "beyond-smoke")[-1] == "07_beyond"
    assert "07_beyond" not in study.check_notebooks(None, "demo")
    assert BEYOND_NOTEBOOKS[:-1] == STUDY_NOTEBOOKS
    with pytest.raises(ConfigError, match="unknown notebook '07_beyond'"):
        study.check_notebooks("07_beyond", "smoke")


def test_beyond_profile_fits_the_cpu_budget():
    """One seed of the beyond recipe: the published 60-epoch run of this recipe (2-core CPU)
    trained in under 2 hours, and the profile still asks for that recipe."""
    from fer_utils import paths
    from fer_utils.models.resnet import BeyondConfig

    cfg = best_model.beyond_config("beyond")
    run = paths.PROJECT_DIR / "published" / "tenth-test-cpu" / "beyond" / "run-e60-s0"
    stored = json.loads((run / "config.json").read_text())["beyond"]
    assert BeyondConfig.from_dict(stored) == cfg and cfg.image_size == 64
    cost = json.loads((run / "metrics.json").read_text())["cost"]
    assert cost["epochs"] == cfg.epochs and cost["train_seconds"] < 2 * 3600
    assert best_model.beyond_config("beyond-smoke", seed=3).seed == 3 and best_model.beyond_config("demo") is None


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
    monkeypatch.setattr(study, "run_table", lambda *a, **k: (_ for _ in ()).throw(SystemExit("stop")))
    with pytest.raises(SystemExit):
        study.run_tables(profile="smoke", data=str(report_tree), tables="1", gpus="all", workers_per_gpu=2, threads=3)
    assert seen["gpus"] == "all" and seen["workers_per_gpu"] == 2 and seen["threads"] == 3


def _fake_run(root, name, *, holdout, test, data="fp", beyond=True, epochs=2):
    d = root / name
    d.mkdir(parents=True)
    cfg = {"beyond": best_model.beyond_config("beyond-smoke").to_dict(), "data": data, "model": "beyond_resnet"}
    (d / "config.json").write_text(json.dumps(cfg))
    ev = {"holdout": {"accuracy": holdout}, "test": {"accuracy": test, "ci95": [test - 0.1, test + 0.1], "n": 70,
                                                     "mean_class_accuracy": test}}
    (d / "metrics.json").write_text(json.dumps({"evaluations": {str(epochs): ev}, "cost": {}}))
    (d / f"model-e{epochs:04d}.keras").write_bytes(b"x")
    return d


def test_best_model_picks_by_holdout_never_test(tmp_path, monkeypatch):
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: {
        "name": "cnn", "kind": "report_cnn", "path": tmp_path / "cnn.keras", "data": "fp", "holdout_accuracy": None,
        "test_accuracy": 0.99, "test_ci95": [0.9, 1.0], "n_test": 70})
    root = best_model.beyond_dir(tmp_path)
    _fake_run(root, "beyond-a", holdout=0.60, test=0.90)
    _fake_run(root, "beyond-b", holdout=0.70, test=0.50)
    _fake_run(root, "beyond-c", holdout=0.95, test=0.95, data="other")  # other data: never a candidate
    pick = best_model.best_model("smoke", results_dir=tmp_path)
    assert pick["path"].parent.name == "beyond-b" and "holdout" in pick["rule"]
    line = best_model.sorted_by_line(pick)
    assert "beyond-b" in line and "measured test accuracy 50.0%" in line
    best_model.write_sorted_by(tmp_path / "out", pick)
    assert best_model.read_sorted_by(tmp_path / "out")["line"] == line


def test_best_model_falls_back_to_the_final_model_and_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: None)
    with pytest.raises(FerError, match="no trained model for profile 'smoke'.*--model FILE.keras"):
        best_model.best_model("smoke", results_dir=tmp_path)
    final = {"name": "cnn", "kind": "report_cnn", "path": tmp_path / "cnn.keras", "data": "fp", "holdout_accuracy": None,
             "test_accuracy": None, "test_ci95": None, "n_test": None}
    monkeypatch.setattr(best_model, "_final_candidate", lambda profile, results_dir=None: final)
    pick = best_model.best_model("smoke", results_dir=tmp_path)
    assert pick["name"] == "cnn" and "no candidate has a holdout" in pick["rule"]
    assert "test accuracy not measured" in best_model.sorted_by_line(pick)


@pytest.mark.slow
def test_beyond_notebook_runs_at_smoke_size(report_tree, tmp_path):
    """Table 4 (the report's CNN) then `fer run --notebooks 07_beyond`: trains the smoke beyond
    run into results/beyond/ and executes 07_beyond; then organize sorts with the best model."""
    home = tmp_path / "home"
    out = run_fer("tables", "--profile", "beyond-smoke", "--data", str(report_tree), "--tables", "4", "--quiet", home=home, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    out = run_fer("run", "--profile", "beyond-smoke", "--data", str(report_tree), "--notebooks", "07_beyond", home=home, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    runs = list((home / "results" / "beyond").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.json").exists() and not (home / "results" / "runs" / runs[0].name).exists()
    nb = json.loads((home / "results" / "executed" / "07_beyond.ipynb").read_text())
    text = json.dumps(nb["cells"])
    assert "exact McNemar p" in text and "image/png" in text



def test_report_sections_read_the_sorting_output_and_the_beyond_runs(tmp_path):
    from fer_utils.study import report

    assert report.beyond_summary(tmp_path) is None and "fer run --profile beyond" in report.BEYOND_HOWTO
    _fake_run(best_model.beyond_dir(tmp_path), "beyond-a", holdout=0.6, test=0.8)
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
    best_model.write_sorted_by(out, best_model.named_model(tmp_path / "m.keras"))
    sec = report.sorting_section(out)
    assert dict(sec["counts"]) == {"Happiness": 2, "Sadness": 2} and "95% interval" in sec["infant"]
    assert sec["sorted_by"].startswith("Sorted by the model") and "test accuracy not measured" in sec["sorted_by"]


def test_choice_for_names_the_rule_of_the_best_model_or_the_user(tmp_path, monkeypatch):
    from fer_utils.apply import choose as best_model

    picked = {"path": tmp_path / "m.keras", "rule": "best holdout accuracy", "kind": "final"}
    monkeypatch.setattr(best_model, "best_model", lambda profile, results_dir=None: picked)
    assert best_model.choice_for(tmp_path / "m.keras", "demo") is picked
    other = best_model.choice_for(tmp_path / "other.keras", "demo")
    assert other["rule"] == "named by the user"
