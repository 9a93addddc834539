"""fer_utils.stats against hand-made tables and (where installed) scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_utils import stats


def test_mcnemar_hand_made_table():
    # A right / B wrong on 10 faces, A wrong / B right on 2: exact p = 2 * P(X <= 2 | 12, 1/2)
    r = stats.mcnemar(10, 2)
    assert r["p_exact"] == pytest.approx(2 * (1 + 12 + 66) / 2**12)  # 0.0385742...
    assert r["chi2"] == pytest.approx(49 / 12)
    assert r["p_chi2"] == pytest.approx(0.0433081428, rel=1e-8)


def test_mcnemar_symmetric_and_degenerate():
    assert stats.mcnemar(5, 5)["p_exact"] == 1.0
    assert stats.mcnemar(0, 0) == {"b": 0, "c": 0, "discordant": 0, "p_exact": 1.0, "chi2": 0.0, "p_chi2": 1.0}
    assert stats.mcnemar(3, 9)["p_exact"] == stats.mcnemar(9, 3)["p_exact"]
    with pytest.raises(ValueError):
        stats.mcnemar(-1, 2)


def test_against_scipy():
    sp = pytest.importorskip("scipy.stats")
    for b, c in [(10, 2), (40, 61), (0, 7), (150, 120)]:
        assert stats.mcnemar(b, c)["p_exact"] == pytest.approx(sp.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
        chi = (abs(b - c) - 1) ** 2 / (b + c)
        assert stats.mcnemar(b, c)["p_chi2"] == pytest.approx(sp.chi2.sf(chi, 1), rel=1e-9)


def test_wilson_interval_known_values():
    lo, hi = stats.wilson_interval(2465, 3068)  # 80.35% of RAF-DB test
    assert lo == pytest.approx(0.78902, abs=1e-5) and hi == pytest.approx(0.81713, abs=1e-5)
    assert (hi - lo) / 2 == pytest.approx(0.0141, abs=5e-4)  # "about +-1.4 points"
    assert stats.wilson_interval(0, 10)[0] == 0.0 and stats.wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_contingency_and_bootstrap():
    a = np.array([1, 1, 0, 0, 1, 1], bool)
    b = np.array([1, 0, 1, 0, 0, 1], bool)
    assert stats.contingency(a, b) == {"both_right": 2, "a_only": 2, "b_only": 1, "both_wrong": 1}
    with pytest.raises(ValueError):
        stats.contingency(a, b[:3])
    r = stats.paired_bootstrap(a, b, n_boot=500, seed=0)
    assert r["difference"] == pytest.approx(1 / 6)
    assert r["low"] <= r["difference"] <= r["high"]
    assert stats.paired_bootstrap(a, a, n_boot=50)["low"] == 0.0
