"""The report: claims as pure functions (unit tests), and the whole export on smoke results
(experiments 01-04 at the smoke profile, then `fer report`, in a temporary FER_HOME)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from fer_utils import report
from fer_utils.config import METRIC_COLUMNS, PROFILES
from fer_utils.experiments import TableResult

NOTEBOOKS = "01_learning_rate,02_epochs,03_network_depth,04_batch_size"


def table(t: int, rows: dict, profile="full", seeds=(0,), std=None, picks=None) -> TableResult:
    """A hand-made TableResult: rows = {grid value: {metric: value}} (missing metrics 0.5)."""
    idx = pd.Index([float(v) for v in rows], name="value")
    mean = pd.DataFrame([[r.get(c, 0.5) for c in METRIC_COLUMNS] for r in rows.values()], index=idx, columns=list(METRIC_COLUMNS))
    sd = mean * 0.0 if std is None else mean * 0.0 + std
    man = {"table": t, "seeds": list(seeds), "profile": PROFILES[profile].to_dict(), "selection": "test",
           "picks": picks or {"report": float(list(rows)[0]), "sound": None}, "rows": []}
    return TableResult(t, man, mean, sd, {})


def verdict(claims, fragment):
    c = next(c for c in claims if fragment in c.claim)
    return c.verdict, c.report_verdict


# ---------------------------------------------------------------------------------------------
# Claims (pure)


def test_lr_claim_follows_the_numbers():
    good = table(1, {0.01: {"Val_accuracy": 0.3}, 0.001: {"Val_accuracy": 0.8}, 0.0001: {"Val_accuracy": 0.7}})
    bad = table(1, {0.01: {"Val_accuracy": 0.3}, 0.001: {"Val_accuracy": 0.6}, 0.0001: {"Val_accuracy": 0.7}})
    assert report.claim_lr_best_val({1: good}).verdict == report.SUPPORTED
    assert report.claim_lr_best_val({1: bad}).verdict == report.NOT_SUPPORTED
    assert report.claim_lr_best_val({}).verdict == report.NOT_TESTABLE
    # the report's own numbers support it
    assert report.claim_lr_best_val({}).report_verdict == report.SUPPORTED


def test_a_tie_is_not_the_best():
    tie = table(1, {0.01: {"Val_accuracy": 0.8}, 0.001: {"Val_accuracy": 0.8}})
    c = report.claim_lr_best_val({1: tie})
    assert c.verdict == report.NOT_SUPPORTED and "tie" in c.evidence


def test_minimal_discrepancy_claim_is_false_on_the_reports_own_numbers():
    c = report.claim_lr_min_discrepancy({})
    assert c.report_verdict == report.NOT_SUPPORTED
    assert "0.0027" in c.report_evidence and "Lowest |Discrepancy|: lr 0.01" in c.report_evidence
    ours = table(1, {0.01: {"Discrepancy": 0.2}, 0.001: {"Discrepancy": 0.05}, 0.0001: {"Discrepancy": 0.1}})
    assert report.claim_lr_min_discrepancy({1: ours}).verdict == report.SUPPORTED


def test_depth_claims_flip_and_need_their_grid():
    assert verdict(report.claims({}), "depth of 4 gives")[1] == report.NOT_SUPPORTED  # depth 5: 0.7956 > 0.7947
    win = table(3, {3: {"Val_accuracy": 0.5}, 4: {"Val_accuracy": 0.6}})
    lose = table(3, {3: {"Val_accuracy": 0.7}, 4: {"Val_accuracy": 0.6}})
    assert report.claim_depth_best({3: win}).verdict == report.SUPPORTED
    assert report.claim_depth_best({3: lose}).verdict == report.NOT_SUPPORTED
    assert report.claim_depth_degrades({3: win}).verdict == report.NOT_TESTABLE  # no depth 5 or 6
    deg = table(3, {4: {"Val_accuracy": 0.6}, 5: {"Val_accuracy": 0.5}, 6: {"Val_accuracy": 0.4}})
    assert report.claim_depth_degrades({3: deg}).verdict == report.SUPPORTED


def test_epochs_are_compared_at_the_reports_scale():
    # the demo profile's first two epoch counts stand for the report's 100 and 200
    e1, e2 = PROFILES["demo"].epochs_grid[:2]
    best_short = table(2, {e1: {"Val_accuracy": 0.6}, e2: {"Val_accuracy": 0.5}}, profile="demo")
    best_long = table(2, {e1: {"Val_accuracy": 0.5}, e2: {"Val_accuracy": 0.6}}, profile="demo")
    assert report.claim_epochs_best({2: best_short}).verdict == report.SUPPORTED
    c = report.claim_epochs_best({2: best_long})
    assert c.verdict == report.NOT_SUPPORTED and "epochs 200" in c.evidence


def test_batch_claims():
    assert report.claim_batch_min_discrepancy({}).report_verdict == report.SUPPORTED
    small_grid = table(4, {128: {"Discrepancy": 0.1}, 256: {"Discrepancy": 0.2}})
    assert report.claim_batch_min_discrepancy({4: small_grid}).verdict == report.NOT_TESTABLE
    full = {128: {"Discrepancy": 0.3}, 256: {"Discrepancy": 0.2}, 512: {"Discrepancy": 0.1}, 2048: {"Discrepancy": 0.05}}
    assert report.claim_batch_min_discrepancy({4: table(4, full)}).verdict == report.SUPPORTED
    assert report.claim_batch_large_generalise({4: table(4, full)}).verdict == report.SUPPORTED
    full[2048] = {"Discrepancy": 0.4}
    assert report.claim_batch_min_discrepancy({4: table(4, full)}).verdict == report.NOT_SUPPORTED
    assert report.claim_batch_large_generalise({4: table(4, full)}).verdict == report.NOT_SUPPORTED


def test_seed_noise_is_mentioned():
    t = table(1, {0.01: {"Val_accuracy": 0.3}, 0.001: {"Val_accuracy": 0.61}, 0.0001: {"Val_accuracy": 0.6}}, seeds=(0, 1, 2), std=0.05)
    c = report.claim_lr_best_val({1: t})
    assert c.verdict == report.SUPPORTED
    assert "± 0.0500" in c.evidence and "within one standard deviation" in c.evidence


def test_happy_claim_uses_per_class_accuracy():
    def final(acc, confusion=((9, 1), (8, 2))):
        pc = pd.DataFrame({"mean": acc, "std": 0.0, "test images": 10}, index=list(acc))
        return {"per_class": pc, "confusion": confusion, "class_names": list(acc)}

    assert report.claim_happy_best(final({"Happiness": 0.9, "Fear": 0.2})).verdict == report.SUPPORTED
    assert report.claim_happy_best(final({"Happiness": 0.5, "Fear": 0.7})).verdict == report.NOT_SUPPORTED
    # A model that says Happiness for every face is not "best at happy faces": not testable.
    collapsed = report.claim_happy_best(final({"Happiness": 1.0, "Fear": 0.0}, confusion=((10, 0), (10, 0))))
    assert collapsed.verdict == report.NOT_TESTABLE and "every test face" in collapsed.evidence
    c = report.claim_happy_best(None)
    assert c.verdict == c.report_verdict == report.NOT_TESTABLE


def test_claims_cover_every_claim_and_render():
    items = report.claims({})
    assert len(items) == len(report.TABLE_CLAIMS) + 1
    html = report.claims_html(items)
    assert "not supported" in html and "not testable here" in html and html.count("<tr>") == len(items) + 1


def test_comparison_table_has_report_ours_diff():
    t = table(1, {0.01: {"Val_accuracy": 0.3862 + 0.01}, 0.001: {}, 0.0001: {}}, picks={"report": 0.001, "sound": None})
    df = report.comparison_table(t)
    assert list(df.columns) == [*METRIC_COLUMNS, "Chosen by"]
    assert df.loc[("0.01", "report"), "Val_accuracy"] == "0.3862"
    assert df.loc[("0.01", "ours"), "Val_accuracy"] == "0.3962"
    assert df.loc[("0.01", "diff"), "Val_accuracy"] == "+0.0100"
    assert df.loc[("0.001", "ours"), "Chosen by"] == "report's rule"
    assert df.loc[("0.001", "report"), "Chosen by"] == "the report"
    assert df.loc[("0.01", "report"), "Chosen by"] == ""
    assert "Table 1: Learning Rate Experiment Results" in report.styled_comparison(t).to_html()


def test_scaled_epochs_are_matched_to_the_reports_rows():
    e1, e2 = PROFILES["demo"].epochs_grid[:2]
    t = table(2, {e1: {}, e2: {}}, profile="demo", picks={"report": float(e1), "sound": None})
    df = report.comparison_table(t)
    assert df.loc[(f"{e1} (= 100)", "report"), "Val_accuracy"] == "0.7683"
    assert df.loc[(f"{e2} (= 200)", "report"), "Val_accuracy"] == "0.7598"


# ---------------------------------------------------------------------------------------------
# The whole export, on smoke results


@pytest.fixture(scope="module")
def smoke_report(smoke_study):
    """`fer run --profile smoke` ends by exporting the report (see conftest.smoke_study)."""
    return smoke_study


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
    assert (home / "results" / "executed" / "06_report.ipynb").exists()


def test_report_pdf_renders(smoke_report, tmp_path):
    home, out = smoke_report
    if report.find_chromium() is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium): the PDF is not made")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is absent (apt-get install poppler-utils): cannot check the PDF renders")
    pdf = home / "results" / "report.pdf"
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = list(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 1000
