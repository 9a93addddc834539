"""The four experiment notebooks through papermill (smoke profile), plans, and failures."""

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


def test_a_second_run_trains_nothing(smoke_home):
    home, _ = smoke_home
    out = fer("run", "--profile", "smoke", "--notebooks", EXPERIMENTS, home=home)
    assert out.returncode == 0
    assert "epoch 1/" not in out.stdout and "resuming" not in out.stdout
    plan = json.loads(fer("run", "--profile", "smoke", "--plan", "--json", home=home).stdout)
    assert plan["epochs_to_train"] == 0


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


@needs_raf
def test_full_profile_plan_on_real_raf(tmp_path):
    out = fer("run", "--profile", "full", "--data", str(RAF_ZIP), "--plan", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_epochs"] <= 2100


def test_full_profile_without_data_says_what_to_do(tmp_path):
    out = fer("run", "--profile", "full", "--plan", home=tmp_path)
    assert out.returncode == 2
    assert "--data" in out.stderr and len(out.stderr.strip().splitlines()) == 1


FAIL_SCRIPT = """
from fer_utils.experiments import execute_notebooks
raise SystemExit(execute_notebooks(names=["01_learning_rate", "02_epochs"], profile="smoke", data={data!r}, chain="bogus"))
"""


def test_failing_notebook_stops_the_chain_and_keeps_its_copy(report_tree, tmp_path):
    env = dict(os.environ, FER_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", FAIL_SCRIPT.format(data=str(report_tree))], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1
    assert "01_learning_rate failed" in out.stderr and "chain 'bogus'" in out.stderr
    kept = tmp_path / "results" / "executed" / "01_learning_rate.ipynb"
    assert kept.exists() and "An Exception was encountered" in kept.read_text()
    assert not (tmp_path / "results" / "executed" / "02_epochs.ipynb").exists()
