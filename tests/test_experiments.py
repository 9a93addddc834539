"""Tables as rows of runs, the plan (with the final model), manifests; and the four experiment
notebooks through papermill at the smoke profile (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RAF_ZIP, needs_raf, run_fer

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = "01_learning_rate,02_epochs,03_network_depth,04_batch_size"


def fer(*args, home: Path, timeout=900):
    return run_fer(*args, home=home, timeout=timeout)


@pytest.fixture(scope="module")
def smoke_home(smoke_study):
    """All notebooks once at the smoke profile (conftest.smoke_study)."""
    return smoke_study


@pytest.mark.slow
def test_four_notebooks_run_and_write_their_tables(smoke_home):
    home, stdout = smoke_home
    for name in ("00_data", *EXPERIMENTS.split(","), "05_organize", "06_report"):
        nb = json.loads((home / "results" / "executed" / f"{name}.ipynb").read_text())
        assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    for t in (1, 2, 3, 4):
        man = json.loads((home / "results" / "tables" / "smoke" / f"table{t}.json").read_text())
        assert man["rows"] and man["picks"]["report"] is not None
    assert "epoch 1/" in stdout  # per-epoch lines are visible in the batch output
    assert (home / "figures" / "figure12.png").exists()


@pytest.mark.slow
def test_a_second_run_trains_nothing(smoke_home):
    home, _ = smoke_home
    out = fer("run", "--profile", "smoke", "--notebooks", EXPERIMENTS, home=home)
    assert out.returncode == 0
    assert "epoch 1/" not in out.stdout and "resuming" not in out.stdout
    plan = json.loads(fer("run", "--profile", "smoke", "--plan", "--json", home=home).stdout)
    assert plan["epochs_to_train"] == 0


@pytest.mark.slow
def test_shared_configurations_are_trained_once(smoke_home):
    home, _ = smoke_home
    plan = json.loads(fer("run", "--profile", "smoke", "--plan", "--json", home=home).stdout)
    # Table 1's lr=0.001 row is the first epochs of Table 2's run.
    assert plan["total_epochs"] < plan["epochs_without_reuse"]


def test_full_profile_plan_is_at_most_2100_epochs(report_tree, tmp_path):
    out = fer("run", "--profile", "full", "--data", str(report_tree), "--plan", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["total_epochs"] == 2000 and plan["epochs_without_reuse"] == 3650
    assert plan["n_runs"] == 12


def _tree_state(*roots) -> list:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for r in roots for p in Path(r).rglob("*"))


def test_a_plan_reads_only_and_names_run_ids_once_the_data_is_decoded(report_tree, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    before = _tree_state(home, report_tree)
    out = fer("run", "--profile", "full", "--data", str(report_tree), "--plan", "--json", home=home)
    assert out.returncode == 0, out.stderr
    cold = json.loads(out.stdout)
    assert _tree_state(home, report_tree) == before  # nothing decoded, generated or written
    assert cold["decoded"] is False and all(r["run_id"] is None and r["to_train"] == r["epochs"] for r in cold["runs"])
    text = fer("run", "--profile", "full", "--data", str(report_tree), "--plan", home=home).stdout
    assert "(run id once decoded)" in text and "not been decoded" in text
    code = f"from fer_utils.data import datasets; datasets.load({str(report_tree)!r}, image_size=128, verbose=False)"
    env = dict(os.environ, FER_HOME=str(home))
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300).returncode == 0
    warm = json.loads(fer("run", "--profile", "full", "--data", str(report_tree), "--plan", "--json", home=home).stdout)
    assert warm["decoded"] is True and all(r["run_id"] for r in warm["runs"])
    from fer_utils.data import datasets
    from fer_utils.training.config import RunConfig

    fp = datasets.load(report_tree, image_size=128, cache=False, verbose=False).fingerprint
    assert warm["data"] == fp and all(RunConfig.from_dict(r["config"]).run_id == r["run_id"] for r in warm["runs"])
    assert {k: cold[k] for k in ("n_runs", "total_epochs", "epochs_without_reuse")} == \
        {k: warm[k] for k in ("n_runs", "total_epochs", "epochs_without_reuse")}


@needs_raf
def test_full_profile_plan_on_real_raf(tmp_path):
    out = fer("run", "--profile", "full", "--data", str(RAF_ZIP), "--plan", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_epochs"] <= 2100


def test_full_profile_without_data_says_what_to_do(tmp_path):
    out = fer("run", "--profile", "full", "--plan", home=tmp_path)
    assert out.returncode == 2
    assert "--data" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sorting_uses_exactly_the_final_model(smoke_home):
    home, stdout = smoke_home
    env_paths = {"FER_HOME": str(home)}
    code = "from fer_utils.study.experiments import final_model_path; print(final_model_path('smoke'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, **env_paths), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip()
    assert path.endswith(".keras") and Path(path).exists()
    assert f"'model_path': '{path}'" in stdout  # fer run passed it to notebook 05


@pytest.mark.slow
def test_a_failing_notebook_keeps_the_earlier_good_copy(smoke_home, tmp_path):
    from fer_utils.study import notebooks
    from fer_utils.errors import NotebookError

    home, _ = smoke_home
    dest = tmp_path / "01_learning_rate.ipynb"
    dest.write_text("an earlier good executed copy")
    data = str(home / "data" / "synthetic-smoke")
    with pytest.raises(NotebookError) as err:
        notebooks.execute("01_learning_rate", dest, {"profile": "smoke", "data": data, "chain": "bogus"}, stream_output=False)
    assert err.value.notebook == "01_learning_rate" and "chain 'bogus'" in str(err.value)
    assert dest.read_text() == "an earlier good executed copy"
    assert "An Exception was encountered" in (tmp_path / "01_learning_rate.failed.ipynb").read_text()


# ---------------------------------------------------------------------------------------------
# Plans and the final model (fast: a stand-in data set and store, nothing trained)


class _Data:
    def __init__(self, n_train=1500, n_test=500):
        import numpy as np

        self.fingerprint, self.y_train, self.y_test = "f" * 16, np.zeros(n_train, int), np.zeros(n_test, int)


class _Store:
    root = Path("/nonexistent")

    def epochs_done(self, cfg):
        return 0


def _exp(profile, n_train, chain="report", seeds=(0,)):
    from fer_utils.study.profiles import get_profile
    from fer_utils.study.experiments import Experiment

    return Experiment(get_profile(profile), _Data(n_train), tuple(seeds), "test", chain, _Store())


def test_the_demo_plans_its_final_model_apart_and_keeps_the_tables():
    from fer_utils.study.experiments import plan

    p = plan(_exp("demo", 1500))
    final = [r for r in p["runs"] if "final" in r["tables"]]
    assert len(final) == 1 and final[0]["tables"] == ["final"]
    assert final[0]["config"]["batch_size"] == 250 and final[0]["epochs"] == 30 and final[0]["keep"] == [30]
    row = next(r for r in p["runs"] if r["tables"] == [4] and r["config"]["batch_size"] == 2048)
    assert row["epochs"] == 3  # Table 4's row is the report's batch at the table's epochs, unchanged
    assert p["total_epochs"] == 61 + 30
    without_final = plan(_exp("demo", 1500), final=False)
    assert without_final["total_epochs"] == 61 and without_final["n_runs"] == p["n_runs"] - 1


def test_full_and_tenth_final_model_is_the_row_itself():
    from fer_utils.study.experiments import plan

    for name, total in (("full", 2000), ("tenth", 200)):
        p = plan(_exp(name, 12271))
        assert p["total_epochs"] == total and p["n_runs"] == 12
        final = next(r for r in p["runs"] if "final" in r["tables"])
        assert final["tables"] == [4, "final"] and final["config"]["batch_size"] == 2048


def test_selected_chain_cannot_plan_the_final_model_before_table_4():
    from fer_utils.study.experiments import planned_final_value

    assert planned_final_value(_exp("demo", 1500, chain="selected")) is None
    assert planned_final_value(_exp("demo", 1500)) == 2048.0
    assert planned_final_value(_exp("smoke", 140)) is None  # its grid has no 2048


def test_final_batch_size_scales_only_where_the_profile_says():
    from fer_utils.study.profiles import PROFILES
    from fer_utils.study.experiments import final_batch_size

    assert final_batch_size(PROFILES["demo"], 2048, 1500) == 250
    assert final_batch_size(PROFILES["demo"], 128, 1500) == 16
    assert final_batch_size(PROFILES["demo"], 128, 10) == 1
    for name in ("full", "tenth", "smoke"):
        assert final_batch_size(PROFILES[name], 2048, 1500) == 2048


def test_check_seeds():
    from fer_utils.errors import ConfigError
    from fer_utils.study.experiments import check_seeds

    assert check_seeds([0, 2, "3"]) == (0, 2, 3)
    with pytest.raises(ConfigError, match="-1 is negative"):
        check_seeds([0, -1])
    with pytest.raises(ConfigError, match="expected integers"):
        check_seeds(["a"])
    with pytest.raises(ConfigError, match="1 is given twice"):  # a mean over seeds must not count one twice
        check_seeds([0, 1, 1])
    with pytest.raises(ConfigError, match="4294967296 is past 4294967295"):  # NumPy's seeds end there
        check_seeds([2**32])


def test_same_value_matches_grid_values_read_back_from_files():
    from fer_utils.study.protocol import same_value

    assert same_value(0.001, json.loads("0.001")) and same_value(0.1 + 0.2, 0.3)
    assert same_value(128, "128") and not same_value(128, 256)
    assert not same_value(None, None) and not same_value(0.001, None)


def test_a_corrupt_manifest_names_the_file(tmp_path):
    from fer_utils.errors import RunStoreError
    from fer_utils.study.tables import manifest_path, read_manifest

    p = manifest_path("demo", 1, tmp_path)
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    with pytest.raises(RunStoreError, match="table1.json: not valid JSON at line 1 .*a table manifest .*is expected"):
        read_manifest("demo", 1, tmp_path)
    p.write_text("[]")
    with pytest.raises(RunStoreError, match="table1.json: the file should be a JSON object, got a list"):
        read_manifest("demo", 1, tmp_path)
