"""The claims (pure functions of table results), who picked a row, report vs ours, and the
one mean ± std formatter. Fast: no training."""

from __future__ import annotations

import pandas as pd

from fer_utils.study import claims
from fer_utils.study.protocol import METRIC_COLUMNS
from fer_utils.study.profiles import PROFILES
from fer_utils.study.tables import TableResult


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
    assert claims.claim_lr_best_val({1: good}).verdict == claims.SUPPORTED
    assert claims.claim_lr_best_val({1: bad}).verdict == claims.NOT_SUPPORTED
    assert claims.claim_lr_best_val({}).verdict == claims.NOT_TESTABLE
    # the report's own numbers support it
    assert claims.claim_lr_best_val({}).report_verdict == claims.SUPPORTED


def test_a_tie_is_not_the_best():
    tie = table(1, {0.01: {"Val_accuracy": 0.8}, 0.001: {"Val_accuracy": 0.8}})
    c = claims.claim_lr_best_val({1: tie})
    assert c.verdict == claims.NOT_SUPPORTED and "tie" in c.evidence


def test_minimal_discrepancy_claim_is_false_on_the_reports_own_numbers():
    c = claims.claim_lr_min_discrepancy({})
    assert c.report_verdict == claims.NOT_SUPPORTED
    assert "0.0027" in c.report_evidence and "Lowest |Discrepancy|: lr 0.01" in c.report_evidence
    ours = table(1, {0.01: {"Discrepancy": 0.2}, 0.001: {"Discrepancy": 0.05}, 0.0001: {"Discrepancy": 0.1}})
    assert claims.claim_lr_min_discrepancy({1: ours}).verdict == claims.SUPPORTED


def test_depth_claims_flip_and_need_their_grid():
    assert verdict(claims.claims({}), "depth of 4 gives")[1] == claims.NOT_SUPPORTED  # depth 5: 0.7956 > 0.7947
    win = table(3, {3: {"Val_accuracy": 0.5}, 4: {"Val_accuracy": 0.6}})
    lose = table(3, {3: {"Val_accuracy": 0.7}, 4: {"Val_accuracy": 0.6}})
    assert claims.claim_depth_best({3: win}).verdict == claims.SUPPORTED
    assert claims.claim_depth_best({3: lose}).verdict == claims.NOT_SUPPORTED
    assert claims.claim_depth_degrades({3: win}).verdict == claims.NOT_TESTABLE  # no depth 5 or 6
    deg = table(3, {4: {"Val_accuracy": 0.6}, 5: {"Val_accuracy": 0.5}, 6: {"Val_accuracy": 0.4}})
    assert claims.claim_depth_degrades({3: deg}).verdict == claims.SUPPORTED


def test_epochs_are_compared_at_the_reports_scale():
    # the demo profile's first two epoch counts stand for the report's 100 and 200
    e1, e2 = PROFILES["demo"].epochs_grid[:2]
    best_short = table(2, {e1: {"Val_accuracy": 0.6}, e2: {"Val_accuracy": 0.5}}, profile="demo")
    best_long = table(2, {e1: {"Val_accuracy": 0.5}, e2: {"Val_accuracy": 0.6}}, profile="demo")
    assert claims.claim_epochs_best({2: best_short}).verdict == claims.SUPPORTED
    c = claims.claim_epochs_best({2: best_long})
    assert c.verdict == claims.NOT_SUPPORTED and "epochs 200" in c.evidence


def test_batch_claims():
    assert claims.claim_batch_min_discrepancy({}).report_verdict == claims.SUPPORTED
    small_grid = table(4, {128: {"Discrepancy": 0.1}, 256: {"Discrepancy": 0.2}})
    assert claims.claim_batch_min_discrepancy({4: small_grid}).verdict == claims.NOT_TESTABLE
    full = {128: {"Discrepancy": 0.3}, 256: {"Discrepancy": 0.2}, 512: {"Discrepancy": 0.1}, 2048: {"Discrepancy": 0.05}}
    assert claims.claim_batch_min_discrepancy({4: table(4, full)}).verdict == claims.SUPPORTED
    assert claims.claim_batch_large_generalise({4: table(4, full)}).verdict == claims.SUPPORTED
    full[2048] = {"Discrepancy": 0.4}
    assert claims.claim_batch_min_discrepancy({4: table(4, full)}).verdict == claims.NOT_SUPPORTED
    assert claims.claim_batch_large_generalise({4: table(4, full)}).verdict == claims.NOT_SUPPORTED


def test_seed_noise_is_mentioned():
    t = table(1, {0.01: {"Val_accuracy": 0.3}, 0.001: {"Val_accuracy": 0.61}, 0.0001: {"Val_accuracy": 0.6}}, seeds=(0, 1, 2), std=0.05)
    c = claims.claim_lr_best_val({1: t})
    assert c.verdict == claims.SUPPORTED
    assert "± 0.0500" in c.evidence and "within one standard deviation" in c.evidence


def test_happy_claim_uses_per_class_accuracy():
    def final(acc, confusion=((9, 1), (8, 2))):
        pc = pd.DataFrame({"mean": acc, "std": 0.0, "test images": 10}, index=list(acc))
        return {"per_class": pc, "confusion": confusion, "class_names": list(acc)}

    assert claims.claim_happy_best(final({"Happiness": 0.9, "Fear": 0.2})).verdict == claims.SUPPORTED
    assert claims.claim_happy_best(final({"Happiness": 0.5, "Fear": 0.7})).verdict == claims.NOT_SUPPORTED
    # A model that says Happiness for every face is not "best at happy faces": not testable.
    collapsed = claims.claim_happy_best(final({"Happiness": 1.0, "Fear": 0.0}, confusion=((10, 0), (10, 0))))
    assert collapsed.verdict == claims.NOT_TESTABLE and "every test face" in collapsed.evidence
    c = claims.claim_happy_best(None)
    assert c.verdict == c.report_verdict == claims.NOT_TESTABLE


#: The claims the course report draws, counted in its text (Tables 1-4 sections, Conclusion,
#: the sorting discussion): 4 on learning rate, 3 on epochs, 3 on depth, 2 on batch size, 1 on
#: the sorted faces. Written out here, not derived from claims(), so a lost claim fails the test.
REPORT_CLAIMS = {
    "Table 1": ("0.001 gives the best validation", "0.001 also gives the highest training", "discrepancy is minimal", "0.01 is too large"),
    "Table 2": ("100 epochs gives the best", "Higher epoch counts improve", "Fewer epochs mitigate"),
    "Table 3": ("depth of 4 gives the best", "depth of 4 yields the lowest loss", "Depths 5 and 6 degrade"),
    "Table 4": ("2048 has the smallest discrepancy", "Larger batch sizes (512-2048)"),
    "Sorting": ("Happy faces are classified best",),
}


def test_claims_cover_every_claim_of_the_report():
    items = claims.claims({})
    expected = [(where, text) for where, texts in REPORT_CLAIMS.items() for text in texts]
    assert len(items) == len(expected) == 13
    for (where, text), c in zip(expected, items):
        assert text in c.claim and c.where.startswith(where), (where, text, c.claim, c.where)


def test_claims_render_one_row_each():
    from fer_utils.study.report import claims_html, claims_section_html

    items = claims.claims({})
    html = claims_html(items)
    assert "not supported" in html and "not testable here" in html and html.count("<tr>") == 14
    section = claims_section_html(items)
    assert section.startswith("<h2 id='claims'>") and claims.claims_summary(items) in section


def test_comparison_table_has_report_ours_diff():
    t = table(1, {0.01: {"Val_accuracy": 0.3862 + 0.01}, 0.001: {}, 0.0001: {}}, picks={"report": 0.001, "sound": None})
    df = claims.report_vs_ours(t)
    assert list(df.columns) == [*METRIC_COLUMNS, "Chosen by"]
    assert df.loc[("0.01", "report"), "Val_accuracy"] == "0.3862"
    assert df.loc[("0.01", "ours"), "Val_accuracy"] == "0.3962"
    assert df.loc[("0.01", "diff"), "Val_accuracy"] == "+0.0100"
    assert df.loc[("0.001", "ours"), "Chosen by"] == "report's rule"
    assert df.loc[("0.001", "report"), "Chosen by"] == "the report"
    assert df.loc[("0.01", "report"), "Chosen by"] == ""
    assert "Table 1: Learning Rate Experiment Results" in __import__("fer_utils.study.report").study.report.styled_comparison(t).to_html()


def test_scaled_epochs_are_matched_to_the_reports_rows():
    e1, e2 = PROFILES["demo"].epochs_grid[:2]
    t = table(2, {e1: {}, e2: {}}, profile="demo", picks={"report": float(e1), "sound": None})
    df = claims.report_vs_ours(t)
    assert df.loc[(f"{e1} (= 100)", "report"), "Val_accuracy"] == "0.7683"
    assert df.loc[(f"{e2} (= 200)", "report"), "Val_accuracy"] == "0.7598"


# ---------------------------------------------------------------------------------------------
# The three shared pieces


def test_fmt_mean_std_one_seed_several_seeds_and_missing():
    assert claims.fmt_mean_std(0.75) == "0.7500"
    assert claims.fmt_mean_std(0.75, 0.0123, n=3) == "0.7500 ± 0.0123"
    assert claims.fmt_mean_std(0.75, 0.0123, n=1) == "0.7500"  # one seed: no spread to show
    assert claims.fmt_mean_std(float("nan")) == "–"
    assert claims.fmt_mean_std(0.5, 0.25, n=2, digits=3) == "0.500 ± 0.250"
    assert claims.mean_std([0.5, 0.7]) == "0.6000 ± 0.1414"
    assert claims.mean_std([0.5]) == "0.5000"


def test_picked_by_names_the_report_its_rule_and_the_held_out_rule():
    t = table(4, {128: {}, 256: {}, 2048: {}}, picks={"report": 256.0, "sound": 128.0})
    assert claims.picked_by(t, 2048) == ["the report"]
    assert claims.picked_by(t, 256) == ["report's rule"]
    assert claims.picked_by(t, 128) == ["held-out rule"]
    both = table(1, {0.01: {}, 0.001: {}}, picks={"report": 0.001, "sound": 0.001})
    assert claims.picked_by(both, 0.001) == ["the report", "report's rule", "held-out rule"]
    assert claims.picked_by(both, 0.01) == []


def test_picked_by_matches_the_reports_choice_at_the_reports_scale():
    e = PROFILES["demo"].epochs_grid  # 3 stands for the report's 100, its choice in Table 2
    t = table(2, {v: {} for v in e}, profile="demo", picks={"report": float(e[-1]), "sound": None})
    assert claims.picked_by(t, e[0]) == ["the report"]
    assert claims.picked_by(t, e[-1]) == ["report's rule"]


def test_report_vs_ours_uses_the_formatter_with_several_seeds():
    t = table(1, {0.01: {"Val_accuracy": 0.4}, 0.001: {}, 0.0001: {}}, seeds=(0, 1), std=0.01)
    df = claims.report_vs_ours(t)
    assert df.loc[("0.01", "ours"), "Val_accuracy"] == "0.4000 ± 0.0100"
    assert df.loc[("0.01", "report"), "Val_accuracy"] == "0.3862"


def test_said_vs_got_says_whether_the_rule_agrees():
    agree = table(3, {3: {}, 4: {}}, picks={"report": 4.0, "sound": None})
    differ = table(3, {3: {}, 4: {}}, picks={"report": 3.0, "sound": 4.0})
    assert "picks 4: the same choice" in claims.said_vs_got(agree)
    s = claims.said_vs_got(differ)
    assert "picks 3: a different choice" in s and "held-out validation split (max Val_accuracy) the pick is 4" in s
