"""Where and how the study's runs were trained, for the report's last page: versions, backend,
device and CPU flags, the code's commit, and each run's training time (from the runs' own
provenance records, :mod:`fer_utils.training.provenance`)."""

from __future__ import annotations

import os
import platform
import time

import pandas as pd

from fer_utils.training.provenance import git_commit

def _version(mod: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(mod)
    except metadata.PackageNotFoundError:
        return "not installed"


def _trained_on(where: dict | None) -> str:
    """One run's provenance in a few words: backend, device (its name), and the code's commit."""
    if not where:
        return "not recorded"
    text = f"{where['backend']}, {where.get('device', '?')}"
    if where.get("device_name"):
        detail = "; ".join(filter(None, [where["device_name"], where.get("cpu_flags")]))
        text += f" ({detail})"
    if where.get("commit"):
        text += f", commit {where['commit'][:12]}"
    return text


def provenance(results: dict, results_dir=None) -> dict:
    """Profile, data, seeds, selection, versions, machine, git commit, as ``{label: text}``.
    ``results_dir``: the results folder read, when it is not the project's (e.g. published
    runs; where each run was trained is in :func:`run_times`)."""
    from fer_utils.training import backend

    backend.quiet()
    man = next(iter(results.values())).manifest if results else {}
    data = man.get("data", {})
    prof = man.get("profile", {})
    try:
        import keras

        kb = keras.backend.backend()
    except Exception:  # pragma: no cover - keras is a dependency
        kb = "unknown"
    versions = {"python": platform.python_version(), "keras": _version("keras"), "backend": kb,
                "numpy": _version("numpy"), "pandas": _version("pandas")}
    for extra in ("tensorflow", "jax"):
        v = _version(extra)
        if v != "not installed":
            versions[extra] = v
    versions["fer-utils"] = _version("fer-utils")
    return {
        "Profile": f"{prof.get('name', '?')}: {prof.get('description', '')}",
        "Epoch scale": prof.get("epoch_scale", "?"),
        "Data set": ("SYNTHETIC stand-in, " if data.get("synthetic") else "") + f"{data.get('source', '?')}",
        "Layout": str(data.get("layout", "?")),
        "Fingerprint": str(data.get("fingerprint", "?")),
        "Images": f"{data.get('n_train', '?')} train, {data.get('n_test', '?')} test, {data.get('image_size', '?')}x{data.get('image_size', '?')} px",
        "Seeds": ", ".join(map(str, man.get("seeds", []))),
        "Selection": {"test": "test: validate and select on the TEST split (the report's protocol)",
                      "holdout": "holdout: validate and select on a held-out 10% of train; test touched once per run"}.get(man.get("selection"), str(man.get("selection"))),
        "Chain": str(man.get("chain", "?")),
        "Versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "Machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "Git commit": git_commit(),
        "Report made": time.strftime("%Y-%m-%d %H:%M %Z"),
        **({"Results from": f"{results_dir} (runs trained elsewhere: see the table of runs)"} if results_dir else {}),
    }


def run_times(results: dict) -> pd.DataFrame:
    """Every run the study trained for its tables and its final model (Table 4's manifest
    names the final model's runs): what it served, epochs trained, wall time (sum of its epochs)."""
    seen: dict[str, dict] = {}

    def add(run, what, epochs):
        d = seen.setdefault(run.id, {"run": run.id, "tables": [], "epochs used": set(), "_run": run})
        if what not in d["tables"]:
            d["tables"].append(what)
        d["epochs used"].add(int(epochs))

    for t, res in sorted(results.items()):
        for r in res.manifest["rows"]:
            add(res.runs[(r["value"], r["seed"])], t, r["epochs"])
    for res in results.values():
        for run in res.final_runs.values():
            add(run, "final model", run.epochs_done)
    rows = []
    for d in seen.values():
        run = d["_run"]
        where = next((ev.get("trained_with") for ev in run.metrics.get("evaluations", {}).values() if ev.get("trained_with")), None)
        rows.append({"run": d["run"], "tables": ", ".join(map(str, d["tables"])),
                     "epochs used": ", ".join(map(str, sorted(d["epochs used"]))),
                     "epochs trained": run.epochs_done, "wall time (s)": round(run.wall_seconds(), 1),
                     "trained on": _trained_on(where)})
    df = pd.DataFrame(rows, columns=["run", "tables", "epochs used", "epochs trained", "wall time (s)", "trained on"])
    return df.set_index("run")
