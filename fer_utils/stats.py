"""Small, exact statistics for comparing classifiers on one test set (numpy and ``math`` only).

* :func:`wilson_interval` - a 95% interval for an accuracy (k right of n). On RAF-DB's 3,068
  test faces it is about +-1.4 points around 80%: smaller differences need a paired test.
* :func:`mcnemar` - two models on the SAME faces: only the discordant faces count (A right and
  B wrong: ``b``; A wrong and B right: ``c``). The exact test is a two-sided binomial test of
  ``b`` out of ``b + c`` at p = 1/2; the chi-square form (with continuity correction) is what
  older papers report.
* :func:`paired_bootstrap` - an interval for the difference of two accuracies on the same faces.

scipy is a dev dependency only, so nothing here needs it (the tests check against it).
"""

from __future__ import annotations

import math

import numpy as np

#: two-sided normal quantile for 95%
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (95% by default).

    >>> lo, hi = wilson_interval(80, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.7112, 0.8666)
    >>> wilson_interval(0, 0)
    (nan, nan)
    """
    k, n = int(k), int(n)
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must lie in 0..n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if k == 0 else lo, 1.0 if k == n else hi)  # exact ends, not float rounding


def _log_binom_pmf(i: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0)


def binomial_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (p = 1/2).

    >>> round(binomial_two_sided_half(2, 10), 6)
    0.109375
    """
    k, n = int(k), int(n)
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(math.exp(_log_binom_pmf(i, n)) for i in range(m + 1))
    return float(min(1.0, 2.0 * tail))


def contingency(correct_a, correct_b) -> dict:
    """The 2x2 table of two models on the same faces, from per-face correctness (booleans)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"per-face results differ in length ({a.shape} vs {b.shape}): not the same faces")
    return {
        "both_right": int(np.sum(a & b)),
        "a_only": int(np.sum(a & ~b)),
        "b_only": int(np.sum(~a & b)),
        "both_wrong": int(np.sum(~a & ~b)),
    }


def mcnemar(b: int, c: int) -> dict:
    """McNemar's test on the discordant counts ``b`` (A right, B wrong) and ``c`` (A wrong, B
    right). Returns the exact two-sided p-value, and the chi-square statistic with continuity
    correction and its p-value (chi-square with 1 degree of freedom).

    >>> r = mcnemar(10, 2)
    >>> round(r["p_exact"], 6), round(r["chi2"], 4), round(r["p_chi2"], 4)
    (0.038574, 4.0833, 0.0433)
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"counts must be non-negative, got b={b}, c={c}")
    n = b + c
    # Edwards' continuity correction, floored at 0 (|b - c| <= 1 is no evidence at all)
    chi2 = max(abs(b - c) - 1, 0) ** 2 / n if n else 0.0
    return {
        "b": b,
        "c": c,
        "discordant": n,
        "p_exact": binomial_two_sided_half(b, n),
        "chi2": float(chi2),
        "p_chi2": float(math.erfc(math.sqrt(chi2 / 2.0))),  # survival of chi2(1) at chi2
    }


def paired_bootstrap(correct_a, correct_b, n_boot: int = 2000, seed: int = 0, z: float = Z95) -> dict:
    """Percentile bootstrap (95%) of accuracy(A) - accuracy(B), resampling faces in pairs."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("per-face results must be two 1-d arrays of one length (the same faces)")
    diff = a - b
    rng = np.random.default_rng([int(seed), 0xB007])
    n = len(diff)
    if n == 0:
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "n_boot": 0}
    means = np.empty(n_boot)
    for i in range(n_boot):  # loop: memory stays O(n) on large test sets
        means[i] = diff[rng.integers(0, n, n)].mean()
    alpha = (1 - math.erf(z / math.sqrt(2))) / 2
    return {"difference": float(diff.mean()), "low": float(np.quantile(means, alpha)),
            "high": float(np.quantile(means, 1 - alpha)), "n_boot": int(n_boot)}
