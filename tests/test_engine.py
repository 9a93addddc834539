"""fer_utils.training.engine: the plan trained sequentially or on Dask workers gives the same histories;
a killed worker, an unreachable scheduler and two studies on one store; the cluster recipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fer_utils.models.report_cnn import training_flops
from fer_utils.training import clusters, engine
from fer_utils.errors import FerError

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = slice(0, 5)  # epoch, loss, accuracy, val_loss, val_accuracy: every column but seconds


def _histories(store: Path) -> dict:
    """run id -> history.csv without its seconds column (text, compared byte for byte)."""
    out = {}
    for h in sorted(store.glob("*/history.csv")):
        out[h.parent.name] = "\n".join(",".join(line.split(",")[NUMBERS]) for line in h.read_text().splitlines())
    return out


def _rows(store: Path) -> dict:
    return {k: len(v.splitlines()) - 1 for k, v in _histories(store).items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Tiny data, the smoke profile's Tables 1-2 (Table 2 at 1 and 3 epochs: 3 runs, 5 epochs),
    and the reference: that plan trained sequentially, 1 intra-op thread, in a subprocess."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_report_layout

    from fer_utils.study import experiments

    from fer_utils import paths

    base = tmp_path_factory.mktemp("engine")
    data = write_report_layout(base / "ds")
    old = paths.CACHE_DIR, paths.RUNS_DIR
    paths.CACHE_DIR, paths.RUNS_DIR = base / "cache", base / "plan-store"
    try:
        exp = experiments.setup(profile="smoke", data=str(data), overrides={"epochs_grid": (1, 3)}, verbose=False)
        plan = experiments.plan(exp, tables=(1, 2))
    finally:
        paths.CACHE_DIR, paths.RUNS_DIR = old
    (base / "plan.json").write_text(json.dumps(plan))
    ctx = {"base": base, "data": data, "cache": base / "cache", "plan": plan, "plan_path": base / "plan.json"}
    ref = _run_plan(ctx, base / "reference")
    assert ref.returncode == 0, ref.stderr[-3000:]
    ctx["reference"] = _histories(base / "reference")
    assert sorted(_rows(base / "reference").values()) == [1, 1, 3]
    return ctx


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fer_utils.training import engine
    from fer_utils import paths

    if __name__ == "__main__":
        plan, data, cache, store = sys.argv[1:5]
        paths.CACHE_DIR = Path(cache)
        s = engine.train_plan(json.loads(Path(plan).read_text()), data_path=data, store_root=store)
        print("SUMMARY", json.dumps({k: v for k, v in s.items() if k != "results"}))
    """
)


def _run_plan(ctx, store: Path, background=False):
    script = ctx["base"] / "train_plan.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", OMP_NUM_THREADS="1", TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(script), str(ctx["plan_path"]), str(ctx["data"]), str(ctx["cache"]), str(store)]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_two_workers_train_the_same_histories_as_one_process(study, tmp_path, capsys, monkeypatch):
    from fer_utils import paths

    monkeypatch.setattr(paths, "CACHE_DIR", study["cache"])
    s = engine.train_plan(study["plan"], data_path=study["data"], store_root=tmp_path / "runs", workers=2, threads=1)
    assert s["engine"] == "dask local cluster" and s["workers"] == 2
    assert s["epochs_trained"] == 5 and s["runs_trained"] == 3
    assert _histories(tmp_path / "runs") == study["reference"]
    out = capsys.readouterr().out
    assert out.count("] epoch ") == 5  # one line per epoch, sent by the worker that trained it
    again = engine.train_plan(study["plan"], data_path=study["data"], store_root=tmp_path / "runs", workers=2)
    assert again["epochs_trained"] == 0  # a complete store: nothing to hand out


def _cmdline(proc) -> str:
    """A process's command line, or "" for one that ended meanwhile (a short-lived child)."""
    import psutil

    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_its_run_resumes(study, tmp_path, monkeypatch):
    import psutil

    from fer_utils import paths

    monkeypatch.setattr(paths, "CACHE_DIR", study["cache"])
    store = tmp_path / "runs"
    result, killed = {}, []

    def train():
        try:
            result["summary"] = engine.train_plan(study["plan"], data_path=study["data"], store_root=store,
                                                  workers=2, threads=1, progress=False)
        except Exception as exc:  # noqa: BLE001 - asserted below
            result["error"] = exc

    t = threading.Thread(target=train)
    t.start()
    deadline = time.time() + 300
    while time.time() < deadline and t.is_alive() and not killed:
        if sum(_rows(store).values()) >= 1:  # training has begun: kill a worker mid-study
            workers = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in _cmdline(p)]
            if workers:
                try:
                    os.kill(workers[0].pid, signal.SIGKILL)
                    killed.append(workers[0].pid)
                except ProcessLookupError:  # it ended on its own meanwhile: look again
                    pass
        time.sleep(0.05)
    t.join(600)
    assert killed, "no worker process was found to kill"
    assert "error" not in result, result.get("error")
    assert _histories(store) == study["reference"]  # every run complete, gapless, identical


def test_an_unreachable_scheduler_fails_fast_with_one_line(tmp_path):
    plan = {"runs": [{"run_id": "r", "config": {"depth": 2, "image_size": 32}, "epochs": 1, "keep": [1], "to_train": 1}]}
    t0 = time.perf_counter()
    with pytest.raises(FerError) as err:
        engine.train_plan(plan, data_path=tmp_path, store_root=tmp_path / "runs", scheduler="tcp://127.0.0.1:9", progress=False)
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    assert "\n" not in msg and "--scheduler tcp://127.0.0.1:9: nothing answers there" in msg and "drop --scheduler" in msg
    with pytest.raises(FerError, match="expected a Dask scheduler address"):
        clusters.connect("not-an-address")


def test_a_port_that_is_not_a_dask_scheduler_fails_in_seconds():
    """Something else listening (here an HTTP server on a loopback port) takes the connection and
    never speaks Dask: a one-line error within the timeout, where a Client waited forever."""
    import http.server

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        t0 = time.perf_counter()
        with pytest.raises(FerError) as err:
            clusters.connect(address, timeout=2)
        assert time.perf_counter() - t0 < 8
        assert f"--scheduler {address}: nothing that speaks Dask answered within 2s" in str(err.value)
        assert "\n" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_two_studies_on_one_store_never_train_an_epoch_twice(study, tmp_path):
    store = tmp_path / "shared-store"
    procs = [_run_plan(study, store, background=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    lines = sum(out.count("] epoch ") for out, _ in outs)
    trained = sum(json.loads(out.split("SUMMARY ", 1)[1])["epochs_trained"] for out, _ in outs)
    assert lines == trained == 5  # each epoch trained, and logged, by exactly one of the two
    assert _histories(store) == study["reference"]


def test_a_worker_that_cannot_see_the_store_says_so(tmp_path):
    missing = tmp_path / "not-shared" / "runs"
    assert "does not exist on this worker" in engine.store_problem(missing)
    assert engine.store_problem(tmp_path) is None and list(tmp_path.iterdir()) == []  # the probe is gone
    spec = {"run_id": "x", "config": {"data": "0" * 64}, "epochs": 1, "keep": [1]}
    with pytest.raises(FerError, match="FER_HOME to a shared filesystem"):
        engine.train_one(spec, data_path=tmp_path, store_root=missing)


def test_longest_runs_first_and_flops():
    assert training_flops(4, 128) == 347_916_672  # ~0.35 GFLOP: the 0.33 figure
    assert training_flops(2, 128) == 166_152_576


@pytest.mark.parametrize("depth,size", [(2, 32), (4, 128), (6, 100)])
def test_the_closed_form_flop_count_is_the_layer_walk_of_the_built_model(depth, size):
    from fer_utils.models.report_cnn import build_model, flops_per_image

    assert training_flops(depth, size) == 3 * flops_per_image(build_model(depth, size, 7, compile=False))
    runs = [{"run_id": "a", "config": {"depth": 2, "image_size": 128}, "epochs": 50, "to_train": 50},
            {"run_id": "b", "config": {"depth": 2, "image_size": 128}, "epochs": 1000, "to_train": 1000},
            {"run_id": "c", "config": {"depth": 4, "image_size": 128}, "epochs": 100, "to_train": 100},
            {"run_id": "d", "config": {"depth": 4, "image_size": 128}, "epochs": 100, "to_train": 0}]
    assert [r["run_id"] for r in engine.ordered({"runs": runs})] == ["b", "c", "a"]


def test_worker_environments_for_cpus_and_gpus(monkeypatch):
    cpu = clusters.worker_envs(2, cores=16)
    assert len(cpu) == 2 and cpu[0]["TF_NUM_INTRAOP_THREADS"] == "8" and cpu[0]["OMP_NUM_THREADS"] == "8"
    assert "CUDA_VISIBLE_DEVICES" not in cpu[0]
    shared = clusters.worker_envs(None, ["0"], 4, cores=16)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in shared] == ["0"] * 4
    assert shared[0]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.225" and shared[0]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    one_each = clusters.worker_envs(None, ["0", "1", "2"], 1, cores=16)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in one_each] == ["0", "1", "2"] and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in one_each[0]
    with pytest.raises(FerError, match="leave --workers out"):
        clusters.worker_envs(3, ["0", "1"], 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert clusters.gpu_ids("all") == ["2", "5"] and clusters.gpu_ids(1) == ["2"]
    with pytest.raises(FerError, match="2 GPU"):
        clusters.gpu_ids(3)


# ---------------------------------------------------------------------------------------------
# The README's cluster recipes, built offline (a real SLURM or Kubernetes is not testable here)


def test_slurm_recipe_builds_the_expected_job_script():
    jq = pytest.importorskip("dask_jobqueue")
    cluster = jq.SLURMCluster(
        queue="gpu", account="myproject", cores=8, processes=1, memory="32GB", walltime="04:00:00",
        job_extra_directives=["--gres=gpu:1"],
        job_script_prologue=["export FER_HOME=/shared/fer", "export KERAS_BACKEND=jax"],
        scheduler_options={"dashboard_address": ":8787"},
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A myproject", "#SBATCH --gres=gpu:1", "#SBATCH -t 04:00:00",
                 "export FER_HOME=/shared/fer", "distributed.cli.dask_worker"):
        assert line in script, line
    assert "--nthreads 8" in script and "--nanny" in script


def test_kubernetes_recipe_builds_the_expected_spec():
    k8s = pytest.importorskip("dask_kubernetes.operator")
    spec = k8s.make_cluster_spec(name="fer", image="ghcr.io/you/fer:latest", n_workers=4,
                                 resources={"limits": {"nvidia.com/gpu": "1"}},
                                 env={"FER_HOME": "/shared/fer", "KERAS_BACKEND": "jax"})
    worker = spec["spec"]["worker"]
    assert spec["kind"] == "DaskCluster" and worker["replicas"] == 4
    container = worker["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/you/fer:latest"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "FER_HOME", "value": "/shared/fer"} in container["env"]


def test_a_deadline_in_the_past_hands_out_nothing(tmp_path):
    plan = {"runs": [{"run_id": "r", "config": {"depth": 2, "image_size": 32}, "epochs": 1, "keep": [1], "to_train": 1}]}
    s = engine.train_plan(plan, data_path=tmp_path, store_root=tmp_path / "runs", deadline=time.time() - 1, progress=False)
    assert s["stopped"] and s["epochs_trained"] == 0 and s["results"] == []
