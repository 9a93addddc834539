"""The study's orchestration (fer_utils.study.pipeline): every check before any work, the order train ->
notebooks -> report, a failing notebook stopping the chain, and `fer tables` at smoke size."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_fer
from fer_utils import paths
from fer_utils.study import pipeline as study
from fer_utils.errors import ConfigError, DataError, FerError, NotebookError


def test_check_arguments_rejects_bad_seeds_before_anything():
    with pytest.raises(ConfigError, match="-1 is negative"):
        study.check_arguments(profile="demo", seeds=[-1])
    with pytest.raises(ConfigError, match="no seed given"):
        study.check_arguments(profile="demo", seeds=[])
    assert study.check_arguments(profile="demo", seeds=None)["seeds"] is None


def test_check_arguments_names_profile_data_and_workers():
    with pytest.raises(ConfigError, match="profile 'bogus': expected one of full, demo, tenth, smoke"):
        study.check_arguments(profile="bogus")
    with pytest.raises(DataError, match="--data /no/such/place: no such file or folder"):
        study.check_arguments(profile="demo", data="/no/such/place")
    with pytest.raises(ConfigError, match="--data /path/to/raf-basic.zip"):
        study.check_arguments(profile="tenth")
    with pytest.raises(ConfigError, match="--workers 0"):
        study.check_arguments(profile="demo", workers=0)
    with pytest.raises(ConfigError, match="--chain 'bogus'"):
        study.check_arguments(profile="demo", chain="bogus")
    with pytest.raises(FerError, match="--scheduler 'nohost': expected a Dask scheduler address such as tcp://host:8786"):
        study.check_arguments(profile="demo", scheduler="nohost")  # before any data is loaded
    assert study.check_arguments(profile="demo", scheduler="tcp://10.0.0.1:8786")["profile"] == "demo"


def test_check_notebooks():
    assert study.check_notebooks(None)[0] == "00_data" and study.check_notebooks(None)[-1] == "06_report"
    assert study.check_notebooks("06_report,01_learning_rate") == ["01_learning_rate", "06_report"]  # study order
    with pytest.raises(ConfigError, match="no notebook named"):
        study.check_notebooks(",")
    with pytest.raises(ConfigError, match="unknown notebook '07_nope'"):
        study.check_notebooks(["07_nope"])


def test_check_tables_names_what_was_given():
    assert study.check_tables("3,1,3") == (1, 3) and study.check_tables(None) == (1, 2, 3, 4)
    assert study.check_tables([4]) == (4,)
    for given, shown in (("5", "'5'"), ("1,x", "'1,x'"), ([0, 2], "'0,2'"), (",", "','")):
        with pytest.raises(ConfigError, match=f"--tables {shown}: expected table numbers from 1 to 4"):
            study.check_tables(given)


def test_check_writable(tmp_path):
    study.check_writable(tmp_path / "a" / "b")  # creatable
    (tmp_path / "file").write_text("x")
    with pytest.raises(FerError, match="a file stands where the folder"):
        study.check_writable(tmp_path / "file" / "results")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(FerError, match="not writable"):
            study.check_writable(ro / "results")
    finally:
        ro.chmod(0o700)


def test_run_study_trains_first_and_a_failing_notebook_stops_the_chain(report_tree, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "EXECUTED_DIR", tmp_path / "results" / "executed")
    monkeypatch.setattr(study, "_train", lambda exp, p, workers, scheduler, progress=True, **kw: calls.append(("train", p["n_runs"])))

    def execute(name, dest, params):
        calls.append(("execute", name))
        if name == "02_epochs":
            raise NotebookError("notebook 02_epochs failed at cell 7: ValueError: x", notebook=name, cell=7)
        return dest

    import fer_utils.study.notebooks as nbs

    monkeypatch.setattr(nbs, "execute", execute)
    with pytest.raises(NotebookError):
        study.run_study(profile="smoke", data=str(report_tree), notebooks="01_learning_rate,02_epochs,03_network_depth")
    assert calls[0][0] == "train" and calls[0][1] > 0  # the plan is trained before any notebook
    assert [c[1] for c in calls[1:]] == ["01_learning_rate", "02_epochs"]  # 03 never ran


def test_run_study_plan_only_trains_nothing(report_tree, capsys, monkeypatch):
    monkeypatch.setattr(study, "_train", lambda *a: pytest.fail("plan_only trained"))
    assert study.run_study(profile="smoke", data=str(report_tree), plan_only=True, as_json=True) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["profile"] == "smoke" and plan["epochs_to_train"] == plan["total_epochs"] > 0
    assert all(r["config"]["model"] == "report_cnn" for r in plan["runs"])  # the smoke profile has no other model


@pytest.mark.slow
def test_plan_lists_the_resnet_runs_and_what_they_have(report_tree, capsys, monkeypatch):
    from fer_utils.data import datasets
    from fer_utils.study.beyond import preset_config
    from fer_utils.training.store import RunStore

    monkeypatch.setattr(study, "_train", lambda *a: pytest.fail("plan_only trained"))
    assert study.run_study(profile="beyond-smoke", data=str(report_tree), seeds=[0, 1], plan_only=True, as_json=True) == 0
    entries = [r for r in json.loads(capsys.readouterr().out)["runs"] if r["config"]["model"] == "resnet"]
    smoke = preset_config("resnet-smoke", "")
    assert [(r["config"]["seed"], r["done"], r["to_train"], r["tables"]) for r in entries] == [
        (0, 0, smoke.epochs, ["resnet-smoke"]), (1, 0, smoke.epochs, ["resnet-smoke"])]
    ds = datasets.load(report_tree, image_size=smoke.image_size, verbose=False)
    RunStore().ensure(smoke.replace(data=ds.fingerprint), None, ds, verbose=False, stop_after=1)
    assert study.run_study(profile="beyond-smoke", data=str(report_tree), seeds=[0, 1], plan_only=True) == 0
    out = capsys.readouterr().out
    assert "model resnet (preset resnet-smoke), seed 0, 2 epochs (have 1, train 1)" in out
    assert "model resnet (preset resnet-smoke), seed 1, 2 epochs (have 0, train 2)" in out


@pytest.mark.slow
def test_fer_tables_trains_prints_and_writes_manifests(report_tree, tmp_path):
    out = run_fer("tables", "--profile", "smoke", "--data", str(report_tree), "--tables", "1,3", home=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Table 1: Learning Rate Experiment Results" in out.stdout and "Table 3: Network Depth" in out.stdout
    assert "Chosen by" in out.stdout and "The report picked learning rate 0.001" in out.stdout
    assert out.stdout.strip().splitlines()[-1].startswith("RESULT profile=smoke selection=test seeds=0 tables=1,3")
    assert {p.name for p in (tmp_path / "results" / "tables" / "smoke").iterdir()} == {"table1.json", "table3.json"}
    again = run_fer("tables", "--profile", "smoke", "--data", str(report_tree), "--tables", "1,3", home=tmp_path, timeout=900)
    assert again.returncode == 0 and "] epoch " not in again.stdout  # nothing trained twice
