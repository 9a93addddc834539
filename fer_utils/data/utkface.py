"""UTKFace: ages from file names, age bands, and the report's infant claim as a test.

UTKFace names its crops ``[age]_[gender]_[race]_[date].jpg.chip.jpg``; the synthetic set's
unlabelled faces copy that pattern. The report observed that "for all classes, the model was
able to classify the facial expression of infants better than all other faces" (Figure 16).
Without expression labels that can only be checked as *confidence*: :func:`infant_check`
compares the mean confidence of infants (ages 0-2) with that of older faces, with a 95%
interval of the difference.
"""

from __future__ import annotations

import math


UTK_GENDERS = {0: "male", 1: "female"}
UTK_RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


def parse_utkface_name(name) -> dict | None:
    """Age, gender and race from a UTKFace file name ``[age]_[gender]_[race]_[date].jpg.chip.jpg``.

    Tolerates the real set's malformed names: a missing field (the date where the race should
    be gives ``race=None``), a missing dot (``...357jpg.chip.jpg``), a space in the name. Returns
    None when not even the age can be read.

    >>> parse_utkface_name("UTKFace/26_1_2_20170116174525125.jpg.chip.jpg")
    {'age': 26, 'gender': 1, 'race': 2}
    >>> parse_utkface_name("61_1_20170109150557335.jpg.chip.jpg")
    {'age': 61, 'gender': 1, 'race': None}
    >>> parse_utkface_name("holiday.jpg") is None
    True
    """
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1].replace(" ", "")
    fields = [f for f in base.split("_")]
    if len(fields) < 2 or not fields[0].isdigit():
        return None
    age = int(fields[0])
    if not 0 <= age <= 130:
        return None

    def small(i, allowed):
        if i < len(fields):
            head = fields[i].split(".", 1)[0]
            if head.isdigit() and len(head) == 1 and int(head) in allowed:
                return int(head)
        return None

    gender = small(1, UTK_GENDERS)
    race = small(2, UTK_RACES) if gender is not None else None
    return {"age": age, "gender": gender, "race": race}


#: The age bands of the infant claim: (label, lowest age, highest age or None).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("infants 0-2", 0, 2),
    ("children 3-12", 3, 12),
    ("teens 13-19", 13, 19),
    ("adults 20-59", 20, 59),
    ("60+", 60, None),
)


def age_band(age, bands=AGE_BANDS) -> str | None:
    """The label of the band holding ``age`` (None when none does).

    >>> age_band(1), age_band(45), age_band(80)
    ('infants 0-2', 'adults 20-59', '60+')
    """
    if age is None:
        return None
    for label, lo, hi in bands:
        if age >= lo and (hi is None or age <= hi):
            return label
    return None


def confidence_by_age(predictions_df, bands=AGE_BANDS):
    """Mean confidence and count per age band, from a predictions table with ``source`` and
    ``confidence`` columns (ages read from UTKFace-style names; other names are left out).

    Columns: ``n``, ``mean_confidence``, ``sem`` (standard error of the mean), ``median_confidence``;
    one row per band, in band order (empty bands have n = 0).
    """
    import pandas as pd

    df = predictions_df.copy()
    if "age" not in df:
        df["age"] = [(parse_utkface_name(s) or {}).get("age") for s in df["source"]]
    df = df[df["age"].notna()]
    df["band"] = [age_band(int(a), bands) for a in df["age"]]
    labels = [b[0] for b in bands]
    g = df.groupby("band")["confidence"]
    out = pd.DataFrame({
        "n": g.size(),
        "mean_confidence": g.mean(),
        "sem": g.sem(),
        "median_confidence": g.median(),
    }).reindex(labels)
    out["n"] = out["n"].fillna(0).astype(int)
    out.index.name = "age band"
    return out



INFANT_MAX_AGE = 2


def infant_check(predictions_df, max_age: int = INFANT_MAX_AGE, z: float = 1.96) -> dict:
    """Are infants classified more confidently than older faces? Mean confidence of each group
    and the difference (infants minus older) with a ``z``-interval (95% by default) from
    Welch's standard error, from a predictions table with ``source`` and ``confidence``.

    Returns a dict: ``n_infants``, ``n_older``, ``mean_infants``, ``mean_older``, ``diff``,
    ``se``, ``low``, ``high`` (NaN when a group has fewer than 2 faces) and ``verdict``: "more"
    or "less" when the interval excludes 0, "no more and no less" when it holds 0, "cannot
    tell" without two faces in each group.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"source": ["1_0_0_x.jpg", "2_0_0_y.jpg", "30_0_0_z.jpg", "40_0_0_w.jpg"],
    ...                    "confidence": [0.9, 0.8, 0.5, 0.4]})
    >>> r = infant_check(df)
    >>> round(r["diff"], 3), r["verdict"]
    (0.4, 'more')
    """
    ages = [(parse_utkface_name(s) or {}).get("age") for s in predictions_df["source"]]
    conf = [float(c) for c in predictions_df["confidence"]]
    infants = [c for a, c in zip(ages, conf) if a is not None and a <= max_age]
    older = [c for a, c in zip(ages, conf) if a is not None and a > max_age]

    def mean_var(x):
        m = sum(x) / len(x) if x else math.nan
        v = sum((v - m) ** 2 for v in x) / (len(x) - 1) if len(x) > 1 else math.nan
        return m, v

    (mi, vi), (mo, vo) = mean_var(infants), mean_var(older)
    out = {"n_infants": len(infants), "n_older": len(older), "mean_infants": mi, "mean_older": mo,
           "diff": mi - mo, "se": math.nan, "low": math.nan, "high": math.nan, "verdict": "cannot tell"}
    if len(infants) > 1 and len(older) > 1:
        se = math.sqrt(vi / len(infants) + vo / len(older))
        low, high = out["diff"] - z * se, out["diff"] + z * se
        verdict = "more" if low > 0 else "less" if high < 0 else "no more and no less"
        out.update(se=se, low=low, high=high, verdict=verdict)
    return out


def infant_sentence(result: dict) -> str:
    """"We got: ..." for the report, from :func:`infant_check`'s result."""
    r = result
    if r["verdict"] == "cannot tell":
        return (f"We got: cannot check here ({r['n_infants']} infants and {r['n_older']} older faces with a "
                f"readable age; at least 2 of each are needed).")
    return (f"We got: mean confidence {r['mean_infants']:.3f} for {r['n_infants']} infants vs {r['mean_older']:.3f} "
            f"for {r['n_older']} older faces (difference {r['diff']:+.3f}, 95% interval {r['low']:+.3f} to "
            f"{r['high']:+.3f}): infants are classified {r['verdict']} confidently than the others.")
