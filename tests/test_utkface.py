"""UTKFace names, age bands and the infant check (the report's Figure 16 claim), on tables
made here: no images, no model."""

from __future__ import annotations

import math

import pytest

from fer_utils.data.utkface import confidence_by_age, infant_check, infant_sentence, parse_utkface_name



@pytest.mark.parametrize(
    "name, expected",
    [
        ("UTKFace/26_1_2_20170116174525125.jpg.chip.jpg", {"age": 26, "gender": 1, "race": 2}),
        ("1_0_4_20161221193016140.jpg.chip.jpg", {"age": 1, "gender": 0, "race": 4}),
        ("100_0_0_20170112213500903.jpg.chip.jpg", {"age": 100, "gender": 0, "race": 0}),
        ("61_1_20170109150557335.jpg.chip.jpg", {"age": 61, "gender": 1, "race": None}),  # missing field
        ("UTKFace/55_0_0_20170116232725357jpg.chip.jpg", {"age": 55, "gender": 0, "race": 0}),  # missing dot
        ("24_0_1_20170116220224657 .jpg.chip.jpg", {"age": 24, "gender": 0, "race": 1}),  # space
        ("39_1_20170116174525125.jpg.chip.jpg", {"age": 39, "gender": 1, "race": None}),
        ("34_1_2_synth00012.jpg.chip.jpg", {"age": 34, "gender": 1, "race": 2}),  # the synthetic set's
        ("7_3.jpg", {"age": 7, "gender": None, "race": None}),
        ("holiday.jpg", None),
        ("train_00001_aligned.jpg", None),
        ("999_0_0_2017.jpg", None),
    ],
)
def test_parse_utkface_name(name, expected):
    assert parse_utkface_name(name) == expected


def test_confidence_by_age():
    import pandas as pd

    df = pd.DataFrame({
        "source": ["1_0_0_x.jpg", "2_1_0_x.jpg", "8_0_0_x.jpg", "30_0_0_x.jpg", "75_1_1_x.jpg", "odd.jpg"],
        "confidence": [0.9, 0.7, 0.5, 0.4, 0.6, 0.99],
    })
    t = confidence_by_age(df)
    assert list(t.index) == ["infants 0-2", "children 3-12", "teens 13-19", "adults 20-59", "60+"]
    assert t.loc["infants 0-2", "n"] == 2 and t.loc["infants 0-2", "mean_confidence"] == pytest.approx(0.8)
    assert t.loc["teens 13-19", "n"] == 0
    assert t["n"].sum() == 5  # the name without an age is left out


# --------------------------------------------------------------------------------------------
# The notebook, through papermill, on a tiny generated folder and a tiny saved model




def test_infant_check_interval_and_verdict():
    import pandas as pd

    infants = [0.90, 0.85, 0.95, 0.80]
    older = [0.50, 0.60, 0.55, 0.45, 0.52]
    df = pd.DataFrame({"source": [f"{a}_0_0_x{i}.jpg" for i, a in enumerate([0, 1, 2, 2, 30, 40, 50, 60, 70])] + ["odd.jpg"],
                       "confidence": infants + older + [0.1]})
    r = infant_check(df)
    assert (r["n_infants"], r["n_older"]) == (4, 5)
    diff = sum(infants) / 4 - sum(older) / 5
    var = lambda x: sum((v - sum(x) / len(x)) ** 2 for v in x) / (len(x) - 1)  # noqa: E731
    se = math.sqrt(var(infants) / 4 + var(older) / 5)
    assert r["diff"] == pytest.approx(diff) and r["se"] == pytest.approx(se)
    assert (r["low"], r["high"]) == pytest.approx((diff - 1.96 * se, diff + 1.96 * se))
    assert r["verdict"] == "more" and "95% interval" in infant_sentence(r)
    # swapped: less; equal spreads around the same mean: no more and no less
    swapped = df.assign(confidence=[1 - c for c in df["confidence"]])
    assert infant_check(swapped)["verdict"] == "less"
    same = pd.DataFrame({"source": ["1_0_0_a.jpg", "2_0_0_b.jpg", "30_0_0_c.jpg", "40_0_0_d.jpg"],
                         "confidence": [0.4, 0.6, 0.6, 0.4]})
    assert infant_check(same)["verdict"] == "no more and no less"


def test_infant_check_cannot_tell_without_two_of_each():
    import pandas as pd

    r = infant_check(pd.DataFrame({"source": ["1_0_0_a.jpg", "30_0_0_b.jpg", "40_0_0_c.jpg"], "confidence": [0.9, 0.5, 0.4]}))
    assert r["verdict"] == "cannot tell" and math.isnan(r["low"])
    assert "cannot check here (1 infants and 2 older" in infant_sentence(r)
