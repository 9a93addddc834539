"""The report's protocol and its published numbers, as data (DESIGN.md "Facts about the report").

Every cell of Tables 1-4 as the report prints it, the grids and fixed settings of each sweep,
and what the report chose from each table by which rule: the report can then show "report vs.
reproduced" side by side (:mod:`fer_utils.study.claims`).
"""

from __future__ import annotations

import math

#: The notebooks of the report's study, in the order ``fer run`` executes them.
STUDY_NOTEBOOKS = ("00_data", "01_learning_rate", "02_epochs", "03_network_depth", "04_batch_size", "05_organize", "06_report")
#: ... and with the beyond model's comparison after them (profiles ``beyond``, ``beyond-smoke``).
BEYOND_NOTEBOOKS = STUDY_NOTEBOOKS + ("07_beyond",)

#: Training images of RAF-DB basic (the official split): the data size the report's batch
#: sizes were chosen for (``Profile.scale_final_batch`` scales to the data in use by it).
RAF_DB_TRAIN = 12271



#: Each table: the factor varied, its grid, and the fixed settings (as the report states them).
REPORT_PROTOCOL = {
    1: {"factor": "lr", "grid": (0.01, 0.001, 0.0001), "epochs": 50, "depth": 2, "batch_size": 64},
    2: {"factor": "epochs", "grid": (100, 200, 500, 800, 1000), "lr": 0.001, "depth": 2, "batch_size": 64},
    3: {"factor": "depth", "grid": (3, 4, 5, 6), "lr": 0.001, "epochs": 100, "batch_size": 64},
    4: {"factor": "batch_size", "grid": (128, 256, 512, 1024, 2048), "lr": 0.001, "epochs": 100, "depth": 4},
}

TABLE_CAPTIONS = {
    1: "Table 1: Learning Rate Experiment Results",
    2: "Table 2: Epochs Experiment Results",
    3: "Table 3: Network Depth Experiment Results",
    4: "Table 4: Batch Size Experiment Results",
}
TABLE_FACTOR_LABEL = {1: "Learning Rate", 2: "Epochs", 3: "Network Depth", 4: "Batch Size"}
METRIC_COLUMNS = ("Loss", "Accuracy", "Val_loss", "Val_accuracy", "Discrepancy")

#: Every cell of the report's Tables 1-4: {table: {grid value: (Loss, Accuracy, Val_loss,
#: Val_accuracy, Discrepancy)}}, copied from the report's text.
REPORT_TABLES: dict[int, dict[float, tuple[float, float, float, float, float]]] = {
    1: {
        0.01: (1.6414, 0.3889, 1.6319, 0.3862, 0.0027),
        0.001: (0.2538, 0.9071, 0.9752, 0.7546, 0.1525),
        0.0001: (0.6241, 0.7787, 0.7161, 0.7471, 0.0316),
    },
    2: {
        100: (0.1257, 0.9567, 1.2703, 0.7683, 0.1884),
        200: (0.0700, 0.9763, 1.7911, 0.7598, 0.2165),
        500: (0.0536, 0.9822, 2.1033, 0.7526, 0.2296),
        800: (0.0282, 0.9910, 2.8044, 0.7562, 0.2348),
        1000: (0.0364, 0.9887, 2.9084, 0.7239, 0.2648),
    },
    3: {
        3: (0.0841, 0.9703, 1.3802, 0.7803, 0.1900),
        4: (0.1015, 0.9652, 1.1369, 0.7947, 0.1705),
        5: (0.1301, 0.9514, 1.0095, 0.7956, 0.1558),
        6: (0.1220, 0.9580, 1.2100, 0.7692, 0.1888),
    },
    4: {
        128: (0.1075, 0.9619, 1.0375, 0.8035, 0.1584),
        256: (0.1153, 0.9607, 1.1335, 0.7872, 0.1735),
        512: (0.1912, 0.9311, 0.7981, 0.7924, 0.1387),
        1024: (0.2128, 0.9223, 0.8333, 0.7774, 0.1449),
        2048: (0.4335, 0.8467, 0.6851, 0.7774, 0.0693),
    },
}

#: What the report chose from each table, and by which rule.
REPORT_CHOICES = {
    1: {"value": 0.001, "rule": "max Val_accuracy"},
    2: {"value": 100, "rule": "max Val_accuracy"},
    3: {"value": 4, "rule": "max Val_accuracy"},
    # "the smallest Discrepancy between training and validation accuracy": a gap, so its size.
    # (All the report's discrepancies are positive; ours can be negative when a large batch
    # underfits and train accuracy, measured under augmentation, trails validation.)
    4: {"value": 2048, "rule": "min |Discrepancy|"},
}


# ---------------------------------------------------------------------------------------------
# The report's grid beside ours, and its choices applied to a table


def same_value(a, b) -> bool:
    """Whether two grid values are the same number (None matches nothing): 0.001 read back from
    JSON or a CSV equals the profile's 0.001."""
    return a is not None and b is not None and math.isclose(float(a), float(b))

def pick(df, rule: str) -> float:
    """The grid value a rule picks: "min |Discrepancy|" (the report's Table 4) or max Val_accuracy."""
    if rule == "min |Discrepancy|":
        return float(df["Discrepancy"].abs().idxmin())
    return float(df["Val_accuracy"].idxmax())

def published_row(table: int, value, profile: dict):
    """The report's published (Loss, Accuracy, Val_loss, Val_accuracy, Discrepancy) for the
    row at ``value`` of the profile's grid, or None where the report has no such row."""
    eq = report_equivalent(table, value, profile)
    if eq is None:
        return None
    return next((p for k, p in REPORT_TABLES[table].items() if math.isclose(float(k), eq)), None)

def report_equivalent(table: int, value, profile: dict):
    """The report's grid value at the same position as ``value`` in the profile's grid (only
    Table 2's epochs are scaled; other grids are the report's own values)."""
    grid = {1: "lr_grid", 2: "epochs_grid", 3: "depth_grid", 4: "batch_grid"}[table]
    ours = [float(v) for v in profile[grid]]
    theirs = REPORT_PROTOCOL[table]["grid"]
    for i, v in enumerate(ours):
        if math.isclose(v, float(value)) and i < len(theirs):
            return float(theirs[i])
    return None

def grid_label(table: int, value, profile: dict) -> str:
    """A grid value as the tables print it, with the report's value where ours is scaled
    (Table 2 of ``tenth``: ``"10 (= 100)"``)."""
    eq = report_equivalent(table, value, profile)
    v = f"{float(value):g}"
    return v if eq is None or math.isclose(eq, float(value)) else f"{v} (= {eq:g})"

def final_value(manifest: dict) -> float:
    """The grid value of the study's final model in this table (Table 4: a batch size).

    With ``chain="report"`` it is what the report chose (batch 2048), where the profile's grid
    has it; with ``chain="selected"`` it is our pick: the held-out rule's with ``holdout``, else
    the report's rule applied to our numbers.
    """
    table, picks = manifest["table"], manifest["picks"]
    if manifest.get("chain", "report") == "report":
        chosen = REPORT_CHOICES[table]["value"]
        for r in manifest["rows"]:
            eq = report_equivalent(table, r["value"], manifest["profile"])
            if eq is not None and math.isclose(eq, float(chosen)):
                return float(r["value"])
    return float(picks["sound"] if picks.get("sound") is not None else picks["report"])
