"""Bad input for `fer run`, `fer report` and `fer tables`: every case ends with its exit code and
ONE line naming the argument or file and the fix, no traceback, and nothing written or changed
in the work root (FER_HOME). The corpus is data, made by the tests themselves (no real images).

Run as a script to count the corpus's outcomes against another checkout (e.g. the code before
this change): ``python tests/test_bad_input_study.py /path/to/checkout``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _manifest_dir(home: Path, profile: str) -> Path:
    d = home / "results" / "tables" / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def _corrupt_manifest(home: Path) -> None:
    (_manifest_dir(home, "demo") / "table1.json").write_text("{not json")


def _published_demo(home: Path) -> None:
    (home / "pub" / "tables" / "demo").mkdir(parents=True)
    (home / "pub" / "runs").mkdir()


def _not_data(home: Path) -> None:
    (home / "notes.txt").write_text("my notes")


def _a_file(home: Path) -> None:
    (home / "report-here").write_text("not a folder")


def _table1_only(home: Path) -> None:
    man = {"table": 1, "rows": [], "picks": {}, "seeds": [0], "selection": "test"}
    (_manifest_dir(home, "demo") / "table1.json").write_text(json.dumps(man))


def _table1_and_a_foreign_folder(home: Path) -> None:
    _table1_only(home)
    (home / "mine").mkdir()
    (home / "mine" / "notes.txt").write_text("my notes")


def _table1_and_a_file(home: Path) -> None:
    _table1_only(home)
    _a_file(home)


def _manifest_pointing_outside(home: Path) -> None:
    """Table 1's manifest names a run '../outside' (beside the store), which exists there."""
    man = {"table": 1, "rows": [{"value": 0.01, "seed": 0, "epochs": 1, "run_id": "../outside"}], "picks": {},
           "seeds": [0], "selection": "test", "profile": {}, "data": {}}
    (_manifest_dir(home, "demo") / "table1.json").write_text(json.dumps(man))
    run = home / "results" / "outside"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": "f" * 64}))
    for f in ("history.csv", "metrics.json"):
        (run / f).write_text("x")


def _published_pointing_outside(home: Path) -> None:
    """A published folder whose table manifest names a run outside its runs/."""
    man = {"table": 1, "rows": [{"value": 0.01, "seed": 0, "epochs": 1, "run_id": "../../elsewhere"}], "picks": {},
           "seeds": [0], "selection": "test", "profile": {}, "data": {}}
    (home / "pub" / "tables" / "demo").mkdir(parents=True)
    (home / "pub" / "runs").mkdir()
    (home / "pub" / "tables" / "demo" / "table1.json").write_text(json.dumps(man))
    (home / "pub" / "published.json").write_text(json.dumps({"profile": "demo", "tables": [1], "runs": {}}))


def _published_index(text: str):
    def prepare(home: Path) -> None:
        _published_demo(home)
        (home / "pub" / "published.json").write_text(text)
    return prepare


def _published_copy(change=None):
    """A copy of published/tenth-holdout-cpu (a real, sealed publication), then ``change(folder)``."""
    def prepare(home: Path) -> None:
        shutil.copytree(ROOT / "published" / "tenth-holdout-cpu", home / "pub")
        if change:
            change(home / "pub")
    return prepare


def _first_run(pub: Path) -> Path:
    return sorted((pub / "runs").iterdir())[0]


def _edit_a_history(pub: Path) -> None:
    h = _first_run(pub) / "history.csv"
    h.write_text(h.read_text().replace(",0.", ",0.9", 1))


def _drop_a_metrics(pub: Path) -> None:
    (_first_run(pub) / "metrics.json").unlink()


def _manifest_run_id(run_id: str):
    def prepare(home: Path) -> None:
        man = {"table": 1, "rows": [{"value": 0.01, "seed": 0, "epochs": 1, "run_id": run_id}], "picks": {},
               "seeds": [0], "selection": "test", "profile": {}, "data": {}}
        (_manifest_dir(home, "demo") / "table1.json").write_text(json.dumps(man))
    return prepare


def _published_run_id(run_id: str):
    def prepare(home: Path) -> None:
        _published_pointing_outside(home)
        man = home / "pub" / "tables" / "demo" / "table1.json"
        man.write_text(man.read_text().replace("../../elsewhere", run_id))
    return prepare


def _drop_a_history(pub: Path) -> None:
    (_first_run(pub) / "history.csv").unlink()


def _edit_a_metric(pub: Path) -> None:
    m = _first_run(pub) / "metrics.json"
    data = json.loads(m.read_text())
    data["edited"] = "0.99"
    m.write_text(json.dumps(data))


def _edit_a_manifest(pub: Path) -> None:
    m = sorted((pub / "tables").rglob("table*.json"))[0]
    m.write_text(m.read_text().replace("0.", "0.9", 1))


#: (name, argv with {home} for the work root, prepare(home) or None, exit code, fragment of the one line)
CASES = [
    ("run seeds negative", ["run", "--seeds", "-1"], None, 2, "--seeds"),
    ("run seeds empty", ["run", "--seeds", ","], None, 2, "--seeds"),
    ("run seeds not numbers", ["run", "--seeds", "0,x"], None, 2, "--seeds"),
    ("run seeds negative among others", ["run", "--seeds", "0,-3"], None, 2, "--seeds"),
    ("run seed given twice", ["run", "--seeds", "0,0"], None, 2, "seed 0 is given twice"),
    ("run seed past 2**32-1", ["run", "--seeds", "4294967296"], None, 2, "--seeds"),
    ("run json without plan", ["run", "--json"], None, 2, "--json: prints the plan, so it needs --plan"),
    ("run workers per gpu without gpus", ["run", "--workers-per-gpu", "2"], None, 2, "--workers-per-gpu 2: works with --gpus"),
    ("tables seed given twice", ["tables", "--tables", "1,1", "--seeds", "0,0"], None, 2, "seed 0 is given twice"),
    ("run unknown profile", ["run", "--profile", "bogus"], None, 2, "choose from 'full', 'demo', 'tenth', 'smoke'"),
    ("run full without data", ["run", "--profile", "full"], None, 2, "--data"),
    ("run tenth plan without data", ["run", "--profile", "tenth", "--plan"], None, 2, "--data"),
    ("run missing data", ["run", "--data", "{home}/no/such/place"], None, 2, "no such file or folder"),
    ("run data that is not a data set", ["run", "--data", "{home}/notes.txt"], _not_data, 2, "notes.txt"),
    ("run unknown notebook", ["run", "--notebooks", "07_nope"], None, 2, "07_nope"),
    ("run empty notebook list", ["run", "--notebooks", ","], None, 2, "--notebooks"),
    ("run zero workers", ["run", "--workers", "0"], None, 2, "--workers"),
    ("run bad selection", ["run", "--selection", "bogus"], None, 2, "--selection"),
    ("run bad chain", ["run", "--chain", "bogus"], None, 2, "--chain"),
    ("report unknown profile", ["report", "--profile", "bogus"], None, 2, "choose from 'full', 'demo', 'tenth', 'smoke'"),
    ("report profile without results", ["report", "--profile", "tenth"], None, 2, "fer run --profile tenth --data"),
    ("report demo without results", ["report"], None, 2, "fer run --profile demo --notebooks"),
    ("report corrupt manifest", ["report"], _corrupt_manifest, 2, "table1.json: not valid JSON at line 1"),
    ("report published missing", ["report", "--published", "{home}/no/such"], None, 2, "--published"),
    ("report published without tables", ["report", "--published", "{home}"], None, 2, "no tables for profile 'demo'"),
    ("report published other profile", ["report", "--profile", "smoke", "--published", "{home}/pub"], _published_demo, 2,
     "pass --profile demo"),
    ("report markdown without a published folder", ["report", "--markdown"], None, 2, "--published published/"),
    ("report markdown of a folder that is not published", ["report", "--markdown", "--published", "{home}"], None, 2,
     "not a published folder"),
    ("report figure without a published folder", ["report", "--figure"], None, 2, "--figure: works on a published folder"),
    ("report figure of a folder that is not published", ["report", "--figure", "--published", "{home}"], None, 2,
     "not a published folder"),
    ("report out is a file", ["report", "--out", "{home}/report-here"], _a_file, 2, "a file stands"),
    ("publish without results", ["publish", "{home}/pub"], None, 2, "no table manifests"),
    ("publish bad table", ["publish", "{home}/pub", "--tables", "5"], None, 2, "--tables"),
    ("publish a table that has not run", ["publish", "{home}/pub", "--tables", "1,3"], _table1_only, 2,
     "table3.json: no such table manifest"),
    ("publish a corrupt manifest", ["publish", "{home}/pub"], _corrupt_manifest, 2, "table1.json: not valid JSON at line 1"),
    ("publish into a foreign folder", ["publish", "{home}/mine"], _table1_and_a_foreign_folder, 2,
     "not an earlier publication"),
    ("publish onto a file", ["publish", "{home}/report-here"], _table1_and_a_file, 2, "a file stands"),
    ("publish unknown profile", ["publish", "{home}/pub", "--profile", "bogus"], None, 2, "choose from"),
    ("report published index not JSON", ["report", "--published", "{home}/pub", "--markdown"], _published_index("{no"), 2,
     "published.json: not valid JSON"),
    ("report published index a list", ["report", "--published", "{home}/pub", "--markdown"], _published_index("[1, 2]"), 2,
     "published.json: the file should be a JSON object, got a list"),
    ("report published index without runs", ["report", "--published", "{home}/pub", "--figure"],
     _published_index('{"profile": "demo", "tables": [1]}'), 2, "published.json: key 'runs' is missing"),
    ("publish onto a damaged index", ["publish", "{home}/pub"], lambda h: (_table1_only(h), _published_index("{no")(h)), 2,
     "published.json: not valid JSON"),
    ("report published with an edited history", ["report", "--published", "{home}/pub", "--profile", "tenth", "--markdown"],
     _published_copy(_edit_a_history), 2, "history.csv: differs from what published.json recorded"),
    ("report published run without metrics", ["report", "--published", "{home}/pub", "--profile", "tenth", "--markdown"],
     _published_copy(_drop_a_metrics), 2, "metrics.json: listed in published.json but missing"),
    ("report figure over edited numbers", ["report", "--published", "{home}/pub", "--figure"],
     _published_copy(_edit_a_history), 2, "history.csv: differs from what published.json recorded"),
    ("report html of an edited publication", ["report", "--published", "{home}/pub", "--profile", "tenth", "--out", "{home}/out"],
     _published_copy(_edit_a_history), 2, "history.csv: differs from what published.json recorded"),
    ("publish a run id with ../", ["publish", "{home}/pub"], _manifest_pointing_outside, 2, "run id '../outside' is not a run folder's name"),
    ("report published run id with ../", ["report", "--published", "{home}/pub", "--markdown"], _published_pointing_outside, 2,
     "run id '../../elsewhere' is not a run folder's name"),
    ("publish an absolute run id", ["publish", "{home}/pub"], _manifest_run_id("/etc"), 2, "run id '/etc' is not a run folder's name"),
    ("publish a run id with a slash", ["publish", "{home}/pub"], _manifest_run_id("a/b"), 2, "run id 'a/b' is not a run folder's name"),
    ("publish an empty run id", ["publish", "{home}/pub"], _manifest_run_id(""), 2, "run id '' is not a run folder's name"),
    ("report published absolute run id", ["report", "--published", "{home}/pub", "--markdown"], _published_run_id("/etc"), 2,
     "run id '/etc' is not a run folder's name"),
    ("report published index runs a list", ["report", "--published", "{home}/pub", "--markdown"],
     _published_index('{"profile": "demo", "tables": [1], "runs": []}'), 2, "published.json: key 'runs' should be a JSON object"),
    ("report published index not UTF-8", ["report", "--published", "{home}/pub", "--markdown"],
     lambda h: (_published_demo(h), (h / "pub" / "published.json").write_bytes(b'{"profile": "\xff"}')), 2,
     "published.json: not UTF-8 text"),
    ("report published run without history", ["report", "--published", "{home}/pub", "--profile", "tenth", "--markdown"],
     _published_copy(_drop_a_history), 2, "history.csv: listed in published.json but missing"),
    ("report published with an edited metrics.json", ["report", "--published", "{home}/pub", "--profile", "tenth", "--markdown"],
     _published_copy(_edit_a_metric), 2, "metrics.json: differs from what published.json recorded"),
    ("report published with an edited manifest", ["report", "--published", "{home}/pub", "--profile", "tenth", "--markdown"],
     _published_copy(_edit_a_manifest), 2, "differs from what published.json recorded"),
    ("report figure of a publication with an edited manifest", ["report", "--published", "{home}/pub", "--figure"],
     _published_copy(_edit_a_manifest), 2, "differs from what published.json recorded"),
    ("run plan seed given twice", ["run", "--plan", "--seeds", "1,1"], None, 2, "seed 1 is given twice"),
    ("run plan workers per gpu without gpus", ["run", "--plan", "--workers-per-gpu", "2"], None, 2, "works with --gpus"),
    ("run plan missing data", ["run", "--plan", "--data", "{home}/no/such/place"], None, 2, "no such file or folder"),
    ("run plan unknown notebook", ["run", "--plan", "--notebooks", "09_nope"], None, 2, "09_nope"),
    ("run plan scheduler without a port", ["run", "--plan", "--scheduler", "somehost"], None, 2, "--scheduler 'somehost'"),
    ("run scheduler port out of range", ["run", "--scheduler", "tcp://127.0.0.1:70000"], None, 2, "--scheduler 'tcp://127.0.0.1:70000'"),
    ("run scheduler of another protocol", ["run", "--scheduler", "http://127.0.0.1:8786"], None, 2, "expected a Dask scheduler address"),
    ("run scheduler where nothing listens", ["run", "--scheduler", "tcp://127.0.0.1:9"], None, 2, "nothing answers there"),
    ("tables scheduler where nothing listens", ["tables", "--scheduler", "tcp://127.0.0.1:9"], None, 2, "nothing answers there"),
    ("tables bad table", ["tables", "--tables", "5"], None, 2, "--tables"),
    ("tables empty table list", ["tables", "--tables", ","], None, 2, "--tables"),
    ("tables tenth without data", ["tables", "--profile", "tenth"], None, 2, "--data"),
    ("tables seeds negative", ["tables", "--seeds", "-1"], None, 2, "--seeds"),
]


def snapshot(home: Path) -> dict:
    """Every file under ``home``: its relative path and a hash of its bytes."""
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def run_case(case, home: Path, checkout: Path = ROOT, timeout=300) -> dict:
    name, argv, prepare, _, _ = case
    home.mkdir(parents=True, exist_ok=True)
    if prepare:
        prepare(home)
    before = snapshot(home)
    # PYTHONPATH: the notebooks' kernels import the same checkout's package (not the installed one)
    env = dict(os.environ, FER_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(checkout))
    env.pop("FER_CACHE", None)
    env.pop("FER_DEBUG", None)
    args = [a.replace("{home}", str(home)) for a in argv]
    try:
        proc = subprocess.run([sys.executable, "-m", "fer_utils.cli", *args], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # the input was accepted and the command went to work
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return {"name": name, "rc": None, "stderr": err, "lines": [f"(still working after {timeout}s: input accepted)"],
                "traceback": "Traceback" in err, "changed": snapshot(home) != before}
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return {"name": name, "rc": proc.returncode, "stderr": proc.stderr, "lines": lines,
            "traceback": "Traceback" in proc.stderr + proc.stdout, "changed": snapshot(home) != before}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path):
    name, _, _, code, fragment = case
    r = run_case(case, tmp_path / "home")
    assert not r["traceback"], r["stderr"]
    assert r["rc"] == code, r["stderr"]
    assert len(r["lines"]) == 1, r["stderr"]
    assert fragment in r["lines"][0], r["lines"][0]
    assert not r["changed"], "the work root changed"


@pytest.mark.slow
def test_a_failing_notebook_does_not_overwrite_the_good_executed_copy(smoke_study, tmp_path):
    """A report that fails (a manifest damaged after a good run) exits 1 in one line, keeps the
    good executed notebook and report, and leaves the failed copy beside them."""
    src, _ = smoke_study
    home = tmp_path / "home"
    shutil.copytree(src, home, ignore=shutil.ignore_patterns("cache"))
    executed = home / "results" / "executed" / "06_report.ipynb"
    good = {p: p.read_bytes() for p in (executed, home / "results" / "report.html")}
    man = home / "results" / "tables" / "smoke" / "table2.json"
    data = json.loads(man.read_text())
    data["rows"][0]["run_id"] = "no-such-run"
    man.write_text(json.dumps(data))
    env = dict(os.environ, FER_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "fer_utils.cli", "run", "--profile", "smoke", "--notebooks", "06_report"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("fer: error:")]
    assert len(err) == 1 and "notebook 06_report failed at cell" in err[0] and "no-such-run" in err[0]
    assert all(p.read_bytes() == b for p, b in good.items())
    assert (home / "results" / "executed" / "06_report.failed.ipynb").exists()


if __name__ == "__main__":  # count the corpus's outcomes against a checkout
    import tempfile

    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    counts = {"cases": 0, "clear one-line errors": 0, "tracebacks": 0, "wrong exit code": 0, "work root changed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            r = run_case(case, Path(tmp) / f"h{i}", checkout, timeout=90)
            ok = not r["traceback"] and r["rc"] == case[3] and len(r["lines"]) == 1 and case[4] in r["lines"][0]
            counts["cases"] += 1
            counts["clear one-line errors"] += ok
            counts["tracebacks"] += r["traceback"]
            counts["wrong exit code"] += r["rc"] != case[3]
            counts["work root changed"] += r["changed"]
            print(f"{'ok  ' if ok else 'FAIL'} rc={r['rc']} {case[0]}: {(r['lines'] or [''])[-1][:150]}")
    print(json.dumps(counts))
