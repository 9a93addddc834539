"""The report: the final model, the collapse check, how the profile differs from the report's
protocol, the HTML pieces (unit tests), and the whole export on smoke results (`fer run
--profile smoke` in a temporary FER_HOME), also from a published folder of small files."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from conftest import run_fer
from fer_utils.study import notebooks
from fer_utils.study import provenance, report
from fer_utils.study.protocol import METRIC_COLUMNS
from fer_utils.study.profiles import PROFILES
from fer_utils.training.config import RunConfig
from fer_utils.study.tables import TableResult

CLASSES = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]


@dataclass
class FakeRun:
    id: str
    config: RunConfig
    evaluations: dict

    def evaluation(self, epochs):
        return self.evaluations.get(epochs)


def _test_eval(confusion) -> dict:
    cm = np.asarray(confusion)
    per = {c: float(cm[i, i] / cm[i].sum()) for i, c in enumerate(CLASSES)}
    return {"test": {"accuracy": float(np.trace(cm) / cm.sum()), "mean_class_accuracy": float(np.mean(list(per.values()))),
                     "per_class_accuracy": per, "confusion": cm.tolist(), "class_names": CLASSES, "n": int(cm.sum())}}


def table4(profile="demo", final=None, confusion=None, n_train=1500) -> TableResult:
    """Table 4 with one row (batch 2048, 3 epochs) and, with ``final``=(batch, epochs), a final
    model trained apart, as the demo does."""
    cm = confusion if confusion is not None else np.eye(7, dtype=int) * 10 + 1
    row_cfg = RunConfig(data="x", depth=4, batch_size=2048, image_size=72)
    man = {"table": 4, "seeds": [0], "profile": PROFILES[profile].to_dict(), "selection": "test", "chain": "report",
           "picks": {"report": 2048.0, "sound": None}, "data": {"n_train": n_train},
           "rows": [{"value": 2048, "seed": 0, "epochs": 3, "run_id": "row"}]}
    runs = {(2048, 0): FakeRun("row", row_cfg, {3: _test_eval(cm)})}
    final_runs = {}
    if final:
        batch, epochs = final
        man["final"] = {"value": 2048.0, "batch_size": batch, "epochs": epochs, "rows": [{"seed": 0, "epochs": epochs, "run_id": "fin"}]}
        final_runs[0] = FakeRun("fin", row_cfg.replace(batch_size=batch), {epochs: _test_eval(cm)})
    mean = pd.DataFrame([[0.5] * 5], index=pd.Index([2048.0], name="value"), columns=list(METRIC_COLUMNS))
    return TableResult(4, man, mean, mean * 0, runs, final_runs)


# ---------------------------------------------------------------------------------------------
# The final model (pure)


def test_final_model_is_the_final_entry_when_the_profile_trains_it_apart():
    fin = report.final_model({4: table4(final=(250, 30))})
    assert fin["config"].batch_size == 250 and fin["epochs"] == 30 and fin["row_epochs"] == 3
    assert fin["run_ids"] == ["fin"]
    old = report.final_model({4: table4()})  # a manifest without a "final" entry: the row itself
    assert old["config"].batch_size == 2048 and old["epochs"] == 3 and old["run_ids"] == ["row"]


def test_the_final_model_over_seeds_counts_each_test_face_once():
    """Three seeds score the same test split: the confusion matrix is summed over them, but the
    per-class table counts the split's faces (found on real data: 3,555 Happiness faces of 1,185)."""
    res = table4()
    res.manifest["seeds"] = [0, 1, 2]
    res.manifest["rows"] = [{"value": 2048, "seed": s, "epochs": 3, "run_id": f"row{s}"} for s in (0, 1, 2)]
    cms = [np.eye(7, dtype=int) * 10 + 1 for _ in (0, 1, 2)]
    for s, cm in enumerate(cms):  # seed s calls s more faces of each class Happiness: same row sums
        cm[:, 3] += s
        cm[np.arange(7), np.arange(7)] -= s
    res.runs = {(2048, s): FakeRun(f"row{s}", res.runs[(2048, 0)].config, {3: _test_eval(cms[s])}) for s in (0, 1, 2)}
    fin = report.final_model({4: res})
    assert (fin["confusion"] == sum(cms)).all()
    assert list(fin["per_class"]["test images"]) == list(cms[0].sum(axis=1))
    frame = report.per_class_frame(fin)
    assert frame["test images"].sum() == fin["n_test"] == cms[0].sum()


def test_collapse_check():
    one_column = np.zeros((7, 7), dtype=int)
    one_column[:, 3] = 10  # Happiness for every face
    fin = report.final_model({4: table4(confusion=one_column)})
    assert report.collapsed_class(fin) == "Happiness"
    md = report.final_model_markdown(fin)
    assert "has collapsed" in md and "predicts Happiness for every test face" in md and "only 3 optimizer steps" in md
    learned = report.final_model({4: table4(final=(250, 30))})
    assert report.collapsed_class(learned) is None and "collapsed" not in report.final_model_markdown(learned)


def test_the_demo_says_how_its_final_model_differs_from_the_report():
    note = report.final_protocol_note(report.final_model({4: table4(final=(250, 30))}))
    assert "*not* Table 4's row" in note
    assert "2048 × 1,500 / 12,271 = 250" in note and "6 steps an epoch" in note
    assert "30 epochs, 180 steps in all" in note and "took 600 on RAF-DB" in note
    same = report.final_protocol_note(report.final_model({4: table4(profile="full", n_train=12271)}))
    assert "row itself" in same and "not" not in same


def test_optimizer_steps():
    assert report.optimizer_steps(12271, 2048, 100) == 600
    assert report.optimizer_steps(1500, 2048, 3) == 3
    assert report.optimizer_steps(1500, 250, 30) == 180


def test_missing_tables_message_suggests_a_command_that_works():
    demo = report.missing_tables_message({}, "demo")
    assert "fer run --profile demo --notebooks 01_learning_rate,02_epochs,03_network_depth,04_batch_size" in demo
    assert "--data" not in demo
    tenth = report.missing_tables_message({1: None, 2: None}, "tenth")
    assert "fer run --profile tenth --data /path/to/raf-basic.zip --notebooks 03_network_depth,04_batch_size" in tenth
    assert report.missing_tables_message({t: None for t in (1, 2, 3, 4)}, "demo") is None


def test_synthetic_banner_only_on_synthetic_data():
    @dataclass
    class R:
        manifest: dict

    assert "SYNTHETIC" in report.synthetic_banner({1: R({"data": {"synthetic": True}})})
    assert report.synthetic_banner({1: R({"data": {"synthetic": False}})}) is None


# ---------------------------------------------------------------------------------------------
# The whole export, on smoke results


SMALL_FILES = ("config.json", "history.csv", "metrics.json")


@pytest.fixture(scope="module")
def smoke_report(smoke_study):
    """`fer run --profile smoke` ends by exporting the report (see conftest.smoke_study)."""
    return smoke_study


@pytest.mark.slow
def test_report_html_is_complete_and_self_contained(smoke_report):
    home, out = smoke_report
    html_path = home / "results" / "report.html"
    assert str(html_path) in out
    html = html_path.read_text()
    for t, name in enumerate(("Learning Rate", "Epochs", "Network Depth", "Batch Size"), 1):
        assert f"Table {t}: {name} Experiment Results" in html
    assert "Figure 12" in html
    assert re.search(r'<img[^>]+src="data:image/png;base64,', html)
    assert "Verdict (ours)" in html and "Claim (the report)" in html
    assert "SYNTHETIC" in html.upper() and "Provenance" in html
    assert "<script src=" not in html  # nothing fetched from the web
    assert "Traceback" not in html and "Warning" not in html
    assert "import " not in html  # code hidden by default
    assert (home / "figures" / "figure12.png").exists() and (home / "figures" / "figure12.svg").exists()
    assert (home / "figures" / "tables_by_seed.png").exists() and "The tables per seed" in html
    assert (home / "results" / "executed" / "06_report.ipynb").exists()


@pytest.mark.slow
def test_report_pdf_renders(smoke_report, tmp_path):
    home, out = smoke_report
    if notebooks.find_chromium() is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium): the PDF is not made")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is absent (apt-get install poppler-utils): cannot check the PDF renders")
    pdf = home / "results" / "report.pdf"
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = list(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 1000


@pytest.mark.slow
def test_report_rebuilds_from_a_published_folder_of_small_files(smoke_report, tmp_path):
    home, _ = smoke_report
    pub = tmp_path / "published"
    for run in (home / "results" / "runs").iterdir():
        for name in SMALL_FILES:
            if (run / name).exists():
                (pub / "runs" / run.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(run / name, pub / "runs" / run.name / name)
    shutil.copytree(home / "results" / "tables", pub / "tables")
    assert not list(pub.rglob("*.keras"))  # numbers only
    other = tmp_path / "elsewhere"  # an empty FER_HOME: nothing of the study there
    out = tmp_path / "out"
    res = run_fer("report", "--profile", "smoke", "--published", str(pub), "--out", str(out), home=other, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    html = (out / "report.html").read_text()
    assert "Table 4: Batch Size Experiment Results" in html and "Results from" in html and str(pub) in html
    assert (out / "figures" / "figure12.png").exists() and (out / "executed" / "06_report.ipynb").exists()
    assert not (other / "figures").exists() and not (other / "results").exists()  # nothing outside --out


def test_beyond_cost_curve_plots_each_run_at_its_epochs(tmp_path):
    from fer_utils.study import figures

    def run(epochs, acc, secs):
        return {"epochs": epochs, "config": {"seed": 0}, "holdout": {"accuracy": acc - 0.02}, "cost": {"train_seconds": secs},
                "test": {"accuracy": acc, "ci95": [acc - 0.015, acc + 0.015], "mean_class_accuracy": acc - 0.1}}

    fig = figures.beyond_cost_curve([run(20, 0.77, 1362), run(12, 0.72, 900), {"epochs": 5, "config": {}, "test": None}],
                                    save="curve", folder=tmp_path)
    ax = fig.axes[0]
    test_line = ax.get_lines()[0]
    assert list(test_line.get_xdata()) == [12, 20] and list(test_line.get_ydata()) == pytest.approx([0.72, 0.77])
    assert {t.get_text() for t in ax.texts} >= {"0.2 h", "0.4 h", "goal 87.5%"}
    assert (tmp_path / "curve.png").stat().st_size > 0 and (tmp_path / "curve.svg").exists()


def test_the_run_times_table_says_where_each_run_was_trained():
    where = {"backend": "tensorflow", "device": "cpu", "device_name": "AMD EPYC", "cpu_flags": "avx2 avx512f",
             "commit": "0123456789abcdef0123456789abcdef01234567"}
    assert provenance._trained_on(where) == "tensorflow, cpu (AMD EPYC; avx2 avx512f), commit 0123456789ab"
    older = {"backend": "jax", "device": "gpu", "device_name": "NVIDIA H100 80GB HBM3"}  # before commit and flags were kept
    assert provenance._trained_on(older) == "jax, gpu (NVIDIA H100 80GB HBM3)"
    assert provenance._trained_on(None) == "not recorded"


@pytest.mark.slow
def test_provenance_lists_every_run_the_study_trained(smoke_report):
    """The runs table counts the final model's runs too: its runs and epochs are the store's."""
    from fer_utils.study.tables import load_results
    from fer_utils.training.rundir import read_history

    home, _ = smoke_report
    times = provenance.run_times(load_results("smoke", home / "results"))
    store = {d.name: len(read_history(d)) for d in (home / "results" / "runs").iterdir() if (d / "history.csv").exists()}
    assert set(times.index) == set(store) and "final model" in " ".join(times["tables"])
    assert times["epochs trained"].sum() == sum(store.values())
