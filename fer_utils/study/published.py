"""Published results: the small files of real-data runs, committed so the tables rebuild anywhere.

A published folder (``published/<name>/``, e.g. ``published/full-holdout/``) has the layout of a
results folder, restricted to numbers::

    published.json                 index: profile, tables, runs, where and how each was trained
    tables/<profile>/table<N>.json the table manifests (which runs and epochs made each row)
    runs/<run id>/...              also the runs of the profile's other models on the same data
                                   (the beyond profiles' resnet runs; ``models`` in the index)
    runs/<run id>/config.json      the run's configuration
    runs/<run id>/history.csv      one row per epoch
    runs/<run id>/metrics.json     test evaluations of the kept epochs, provenance
    tables.png                     the tables per seed, drawn from these numbers (:func:`draw_figure`)

No models, no images, no image file names: :func:`publish` refuses a metrics file that names an
image. Because the layout is a results folder's, :func:`fer_utils.study.tables.load_results`
reads it as is (``results_dir=published/<name>``); :func:`tables_markdown` prints what docs/results.md quotes
real-data tables from it (``fer report --published DIR``). ``fer publish DEST`` calls :func:`publish`,
with ``figure=True`` (it draws the figure into the same staged copy).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fer_utils.atomic import atomic_write_bytes, atomic_write_json, recover_staged, staged_folder
from fer_utils.errors import FerError

from fer_utils.study.artifact import INDEX, seal, verify
FIGURE = "tables.png"
RUN_FILES = ("config.json", "history.csv", "metrics.json")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class PublishError(FerError):
    """A results folder cannot be published, or a published folder cannot be read."""


def _image_names(obj, where="") -> list[str]:
    """Strings inside a JSON value that look like image file names (they must not be published)."""
    if isinstance(obj, dict):
        return [n for k, v in obj.items() for n in _image_names(k, where) + _image_names(v, where)]
    if isinstance(obj, list):
        return [n for v in obj for n in _image_names(v, where)]
    if isinstance(obj, str) and obj.lower().rstrip().endswith(IMAGE_SUFFIXES):
        return [obj]
    return []


def publish(results_dir, dest, profile: str, tables=None, figure: bool = False) -> dict:
    """Copy the small files of the runs behind ``profile``'s table manifests under
    ``results_dir`` (``tables/<profile>/``, ``runs/``) into ``dest``; return the index.

    ``tables``: which tables, e.g. ``(1, 3)``; each must have its manifest (else refused, nothing
    written). None: every table ``results_dir`` has.

    ``dest`` must be new, empty, or an earlier publication of the same study (same profile,
    selection protocol and data; it holds ``published.json``): publishing again adds tables and
    runs, keeps the earlier ones, and merges a run published before (:func:`_merged_run`), so it
    never drops a number and touches no file it did not write.

    Atomic and resumable: everything is written into a staging copy beside ``dest`` and swapped
    in at the end (:func:`fer_utils.atomic.staged_folder`), with the figure (``figure=True``:
    :func:`draw_figure`, what ``fer publish`` does); after a kill or a full disk, ``dest`` is as
    it was and the same command again does the whole job.
    """
    from fer_utils.study.tables import manifest_path, read_manifest, tables_dir
    from fer_utils.training.store import check_run_id

    results_dir, dest = Path(results_dir), Path(dest)
    recover_staged(dest)  # a swap a kill interrupted is finished first: dest is then one whole version
    src_tables = tables_dir(profile, results_dir)
    manifests = {}
    for t in (1, 2, 3, 4) if tables is None else tables:
        man = read_manifest(profile, t, results_dir)
        if man is not None:
            manifests[t] = man
        elif tables is not None and src_tables.is_dir():
            raise PublishError(f"{manifest_path(profile, t, results_dir)}: no such table manifest; run table {t} first "
                               f"(fer tables --profile {profile} --tables {t}) or leave it out of --tables")
    if not manifests:
        raise PublishError(f"{src_tables}: no table manifests (table1.json ... table4.json) for profile {profile!r}; "
                           f"run the study first (fer run --profile {profile}) or pass the results folder that holds them")
    if dest.exists() and any(dest.iterdir()) and not (dest / INDEX).exists():
        raise PublishError(f"{dest}: not empty and not an earlier publication (no {INDEX}); choose a new folder")
    earlier = read_index(dest) if (dest / INDEX).exists() else None
    if earlier is not None:
        verify(dest, earlier)  # an edited publication is not extended (its edits would be merged in)
        _check_same_study(dest, earlier, profile, manifests)
    run_ids = sorted({r["run_id"] for m in manifests.values() for r in m["rows"] + m.get("final", {}).get("rows", [])}, key=str)
    for t, m in manifests.items():  # a manifest edited to say '../x' must not read or write outside the folders
        for r in m["rows"] + m.get("final", {}).get("rows", []):
            check_run_id(r["run_id"], str(manifest_path(profile, t, results_dir)))
    index = {"profile": profile, "tables": sorted(manifests), "runs": {}}
    files = {}
    for rid in run_ids:
        files[rid] = _run_files(results_dir / "runs" / rid, dest / "runs" / rid)
        index["runs"][rid] = index_entry(files[rid])
    sources = {Path(str(m["data"].get("source", ""))).name for m in manifests.values() if isinstance(m.get("data"), dict)}
    for rid in other_model_runs(results_dir, profile, sources):  # the profile's other models, same data: one runs/ folder
        files[rid] = _run_files(results_dir / "runs" / rid, dest / "runs" / rid)
        index.setdefault("models", {})[rid] = index_entry(files[rid])
    written = {}
    for t, man in manifests.items():
        man = dict(man)
        if isinstance(man.get("data"), dict) and man["data"].get("source"):
            man["data"] = dict(man["data"], source=Path(man["data"]["source"]).name)  # no local paths
        written[t] = man
        index.setdefault("selection", man.get("selection"))
        index.setdefault("seeds", man.get("seeds"))
        index.setdefault("data", man.get("data"))
    if earlier is not None:  # tables published earlier and not now stay, with their runs
        index["runs"] = {**earlier.get("runs", {}), **index["runs"]}
        if earlier.get("models") or index.get("models"):
            index["models"] = {**earlier.get("models", {}), **index.get("models", {})}
        index["tables"] = sorted(set(earlier.get("tables", [])) | set(index["tables"]))
        index["seeds"] = sorted(set(earlier.get("seeds") or []) | set(index["seeds"] or []))
        index = {**{k: v for k, v in earlier.items() if k not in index and k != "files"}, **index}
    with staged_folder(dest) as stage:  # written only once every run has been checked; swapped in whole
        for rid, by_name in files.items():
            for f, data in by_name.items():
                atomic_write_bytes(stage / "runs" / rid / f, data)
        for t, man in written.items():
            atomic_write_json(stage / "tables" / profile / f"table{t}.json", man)
        atomic_write_json(stage / INDEX, index)
        if figure:
            draw_figure(stage)  # it seals the folder too
            index = read_index(stage)
        else:
            index = seal(stage, index)
            atomic_write_json(stage / INDEX, index)
    return index


def _run_files(src: Path, published_run: Path) -> dict:
    """The checked files of one run to publish (numbers only), merged with an earlier publication."""
    missing = [f for f in RUN_FILES if not (src / f).exists()]
    if missing:
        raise PublishError(f"{src}: lacks {', '.join(missing)}; train the run (fer run) before publishing")
    from fer_utils.training import rundir

    metrics = rundir.read_metrics(src)
    images = _image_names(metrics)
    if images:
        raise PublishError(f"{src / 'metrics.json'}: names image files ({images[0]!r}, ...); only numbers may be published")
    return _merged_run(src, published_run, metrics)


def index_entry(files: dict) -> dict:
    """What the index says of one published run: its epochs, kept epochs and where they were trained."""
    evals = json.loads(files["metrics.json"]).get("evaluations", {})
    trained = sorted({json.dumps(e.get("trained_with", {}), sort_keys=True) for e in evals.values()})
    return {"epochs": len(files["history.csv"].decode().strip().splitlines()) - 1,
            "kept_epochs": sorted(int(e) for e in evals), "trained_with": [json.loads(s) for s in trained]}


def other_model_runs(results_dir, profile: str, sources) -> list[str]:
    """The finished runs of the profile's other models (:mod:`fer_utils.study.beyond`) trained on
    the data set named in ``sources`` (the tables' data): published beside the tables' runs."""
    from fer_utils.study.beyond import finished_runs

    return sorted(r["run_id"] for r in finished_runs(results_dir, profile=profile) if r["data_source"] in sources)


def _history_rows(text: str) -> list[list[str]]:
    """A history's rows without the wall-clock seconds (the one column runs may differ in)."""
    lines = text.strip().splitlines()
    cols = lines[0].split(",") if lines else []
    keep = [i for i, c in enumerate(cols) if c != "seconds"]
    return [[row.split(",")[i] for i in keep] for row in lines[1:]]


def _merged_run(src: Path, published_run: Path, metrics: dict) -> dict:
    """The files to publish for one run: the source's, merged with a publication of the same run
    already there. The same run trained again (e.g. continued from 5 to 100 epochs on another
    machine, without its checkpoint) must agree on every epoch both have; the longer history is
    kept and every kept epoch's evaluation of either stays, so publishing never drops a number."""
    new = {f: (src / f).read_bytes() for f in RUN_FILES}
    if not all((published_run / f).exists() for f in RUN_FILES):
        return new
    old = {f: (published_run / f).read_bytes() for f in RUN_FILES}
    if json.loads(old["config.json"]) != json.loads(new["config.json"]):
        raise PublishError(f"{published_run}: published with another config.json than {src}; "
                           f"publish into a new folder")
    h_old, h_new = _history_rows(old["history.csv"].decode()), _history_rows(new["history.csv"].decode())
    for epoch, (a, b) in enumerate(zip(h_old, h_new), 1):
        if a != b:
            raise PublishError(f"{src / 'history.csv'}: epoch {epoch} differs from the published run's "
                               f"({published_run / 'history.csv'}); not the same training, publish into a new folder")
    out = dict(new)
    if len(h_old) > len(h_new):
        out["history.csv"] = old["history.csv"]
    evals = {**json.loads(old["metrics.json"]).get("evaluations", {}), **metrics.get("evaluations", {})}
    if evals.keys() == metrics.get("evaluations", {}).keys():
        return out  # nothing the source lacks: its own bytes (publishing again changes no file)
    evals = dict(sorted(evals.items(), key=lambda kv: int(kv[0])))
    out["metrics.json"] = (json.dumps(dict(metrics, evaluations=evals), indent=2, sort_keys=True) + "\n").encode()
    return out


def _check_same_study(dest: Path, earlier: dict, profile: str, manifests: dict) -> None:
    """An earlier publication is extended only by tables of the same study: same profile, same
    selection protocol, same data (fingerprint); anything else belongs in a folder of its own."""
    have = {"profile": earlier.get("profile"), "selection": earlier.get("selection"),
            "data fingerprint": (earlier.get("data") or {}).get("fingerprint")}
    for t, man in manifests.items():
        data = man.get("data") if isinstance(man.get("data"), dict) else {}
        new = {"profile": profile, "selection": man.get("selection"), "data fingerprint": data.get("fingerprint")}
        for key in have:
            if have[key] is not None and new[key] != have[key]:
                raise PublishError(f"{dest}: published {key} {have[key]!r}, but table {t} has {new[key]!r}; "
                                   f"publish it into a new folder (one folder per profile, selection and data set)")
        _check_keeps_rows(dest, profile, t, man)


def _check_keeps_rows(dest: Path, profile: str, table: int, man: dict) -> None:
    """A table published again replaces its manifest, so the new one must hold every (value, seed)
    row of the old one: more seeds of Table 3 trained in a fresh store would otherwise drop the
    seeds published before. The way to add seeds is one store that holds them all; a finished
    published run is a finished run there (copied into ``runs/``, ``fer tables`` trains nothing of it)."""
    from fer_utils.study.tables import read_manifest

    old = read_manifest(profile, table, dest)
    if old is None:
        return
    key = lambda r: (float(r["value"]), int(r["seed"]))  # noqa: E731
    lost = {key(r) for r in old["rows"]} - {key(r) for r in man["rows"]}
    if lost:
        seeds = sorted({s for _, s in lost})
        raise PublishError(
            f"{dest}: table {table} there has {len(lost)} row(s) the new one lacks (seeds {', '.join(map(str, seeds))}); "
            f"publishing would drop them. Train seeds {','.join(map(str, sorted(set(old['seeds']) | set(man['seeds']))))} "
            f"in one store (copy the published runs/ folders into $FER_HOME/results/runs/: finished runs train nothing) "
            f"or publish into a new folder")


def figure_digest(results: dict) -> str:
    """A short hash of the numbers :func:`draw_figure` draws (every table's per-seed rows, to 6
    decimals): the index records it, so a figure drawn from other numbers is detectable."""
    rows = []
    for t, res in sorted(results.items()):
        for rec in res.per_seed.to_dict("records"):
            rows.append([t, *(round(float(x), 6) for x in rec.values())])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def draw_figure(published_dir) -> Path:
    """(Re)draw ``published_dir/tables.png`` (:func:`fer_utils.study.figures.tables_by_seed`) from the
    folder's own numbers and record in its index which numbers it shows (:func:`figure_digest`)."""
    import matplotlib.pyplot as plt

    from fer_utils.study.tables import load_results
    from fer_utils.study.figures import save_figure, tables_by_seed

    d = as_results_dir(published_dir)
    index = read_index(d)
    listed = index.get("files")  # every number it draws from must be the published one; the figure itself is redrawn
    verify(d, index if not isinstance(listed, dict) else {**index, "files": {k: v for k, v in listed.items() if k != FIGURE}})
    results = load_results(index["profile"], results_dir=d)
    if not results:
        raise PublishError(f"{d}: no tables of profile {index['profile']!r} to draw (tables/{index['profile']}/table<N>.json)")
    fig = tables_by_seed(results)
    out = save_figure(fig, Path(FIGURE).stem, formats=("png",), folder=d)[0]
    plt.close(fig)
    index["figure"] = {"file": FIGURE, "numbers": figure_digest(results)}
    atomic_write_json(d / INDEX, seal(d, index))
    return out


def as_results_dir(published_dir) -> Path:
    """The published folder as a ``results_dir`` for :func:`fer_utils.study.tables.load_results`
    and the report (same layout), after checking it is one."""
    d = Path(published_dir)
    if not (d / INDEX).exists():
        raise PublishError(f"{d}: not a published folder (no {INDEX}); expected e.g. published/full-holdout/ made by fer_utils.study.published.publish")
    return d


def read_index(folder) -> dict:
    """A published folder's ``published.json``, checked: a JSON object with ``profile`` (a
    string), ``tables`` (a list) and ``runs`` (an object); anything else is one line naming the
    file, the key and the fix."""
    from fer_utils.jsonfile import read_json

    path = Path(folder) / INDEX
    return read_json(path, {"profile": str, "tables": list, "runs": dict}, what="a published index (profile, tables, runs)",
                     fix=f"restore it from git (git checkout -- {path}) or publish the study again into a new folder",
                     error=PublishError, missing=PublishError)


def profile_of(published_dir) -> str:
    return read_index(as_results_dir(published_dir))["profile"]


def tables_markdown(published_dir, profile: str | None = None) -> str:
    """The real-data tables of a published folder as markdown (docs/results.md's format): one table
    per manifest, mean ± std over seeds, the report's Val_accuracy beside ours, the picks, and
    where the runs were trained."""
    from fer_utils.study.claims import fmt_mean_std
    from fer_utils.study.protocol import TABLE_CAPTIONS, TABLE_FACTOR_LABEL
    from fer_utils.study.protocol import grid_label, published_row, same_value
    from fer_utils.study.tables import load_results

    d = as_results_dir(published_dir)
    index = read_index(d)
    verify(d, index)
    profile = profile or index["profile"]
    results = load_results(profile, results_dir=d)
    if not results:
        raise PublishError(f"{d}: no tables of profile {profile!r} (tables/{profile}/table<N>.json); the folder holds profile {index['profile']!r}")
    out = []
    for t, res in sorted(results.items()):
        man, n = res.manifest, res.n_seeds
        cols = ["Accuracy", "Val_accuracy", "Discrepancy"] + (["Test_accuracy"] if "Test_accuracy" in res.mean.columns else [])
        where = sorted({f"{w.get('backend', '?')} on {w.get('device', '?')}" for rid in {r['run_id'] for r in man['rows']}
                        for w in index["runs"].get(rid, {}).get("trained_with", [])})
        out.append(f"**{TABLE_CAPTIONS[t]}** (profile `{profile}`, selection `{man['selection']}`, "
                   f"{n} seed{'s' if n > 1 else ''} {', '.join(map(str, man['seeds']))}; trained with {', '.join(where) or 'unknown'})")
        out.append("")
        out.append(f"| {TABLE_FACTOR_LABEL[t]} | report Val_acc | " + " | ".join(cols) + " | picked |")
        out.append("|" + "---|" * (len(cols) + 3))
        for v in res.mean.index:
            pub = published_row(t, v, man["profile"])
            picks = [name for key, name in (("report", "report's rule"), ("sound", "held-out rule")) if same_value(v, man["picks"].get(key))]
            cells = [fmt_mean_std(res.mean.loc[v, c], res.std.loc[v, c], n) for c in cols]
            out.append(f"| {grid_label(t, v, man['profile'])} | {pub[3]:.4f} | " if pub is not None else f"| {grid_label(t, v, man['profile'])} | – | ")
            out[-1] += " | ".join(cells) + f" | {', '.join(picks)} |"
        out.append("")
    return "\n".join(out)


def claims_markdown(published_dir, profile: str | None = None) -> str:
    """The report's claims checked on a published folder's tables (:func:`fer_utils.study.claims.claims`),
    as docs/results.md's markdown table: our verdict beside the verdict on the report's own numbers.
    A claim whose table is not published says "not testable here"."""
    from fer_utils.study.claims import claims
    from fer_utils.study.tables import load_results
    from fer_utils.study.report import final_model

    d = as_results_dir(published_dir)
    profile = profile or profile_of(d)
    results = load_results(profile, results_dir=d)
    items = claims(results, final_model(results))
    out = [f"| # | claim | ours (`{d.name}`) | on the report's own numbers |", "|---|---|---|---|"]
    out += [f"| {i} | {c.claim} | {c.verdict} | {c.report_verdict} |" for i, c in enumerate(items, 1)]
    return "\n".join(out) + "\n"


def markdown(published_dir, profile: str | None = None) -> str:
    """Everything docs/results.md quotes from a published folder: its tables, then the claims table."""
    return tables_markdown(published_dir, profile) + "\n" + claims_markdown(published_dir, profile)
