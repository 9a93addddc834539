"""``fer ship``: make a finished run the model that ships in the package, with its model card.

What it does, in order (nothing is written until every number is measured):

1. the run must be finished and selected on a HOLDOUT (its test split was scored once, at the end);
   its training data is loaded again (``data``: every set, in the run's order; by default the
   first test set's path) and must have the run's fingerprint;
2. float16 or float32: the final model's holdout faces are predicted with its float32 weights and
   with the same weights rounded to float16; float16 ships when it scores the same within 0.1
   point (:data:`FP16_TOLERANCE`), float32 otherwise;
3. the shipped weights are written, loaded back through :func:`fer_utils.apply.shipped.load` (the
   code every user runs), and THAT model is scored once on each labelled test set given
   (:func:`fer_utils.apply.evaluate.evaluate`: accuracy with its 95% Wilson interval, mean class
   and per class accuracy, confusion matrix);
4. ``weights.npz``, ``card.json`` and ``MODEL_CARD.md`` (rendered from card.json by
   :func:`fer_utils.apply.card.render_card`) replace DEST as a whole, atomically (:func:`fer_utils.atomic.staged_folder`).
   A model shipped into DEST before is named on the new card (``replaces``: its name, run, holdout
   and test accuracies, and the models it had replaced), so the card says what it took the place of.

A run trained on several sets at once (:mod:`fer_utils.data.mixture`) ships like any other: its card
lists each set, with its terms and its own held-out accuracy, and the command that trains it
again (``--data`` of each set, ``--mix``, ``--epoch-faces``).

Every number on the card comes from this command; ``tests/test_shipped.py`` checks them against
the shipped file (scoring it again on the real test sets where they are at hand).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fer_utils.apply import shipped
from fer_utils.apply.card import ordered_tests, render_card, summary_line
from fer_utils.errors import ConfigError, DataError, FerError

FP16_TOLERANCE = 0.001  # 0.1 point of holdout accuracy
MAX_BYTES = 6 * 1024 * 1024
TERMS = ("The weights derive from RAF-DB, whose terms allow non-commercial research use only; so do these weights. "
         "Do not use them commercially, and do not use them to make decisions about people.")


def terms(set_names) -> str:
    """The card's terms for weights derived from ``set_names`` (RAF-DB alone: :data:`TERMS`)."""
    names = list(set_names) or ["RAF-DB"]
    if names == ["RAF-DB"]:
        return TERMS
    joined = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return TERMS.replace("from RAF-DB, whose terms allow", f"from {joined}, whose terms all allow")


def parse_data(specs) -> list[Path]:
    """``fer ship --data`` paths (the run's training sets), each checked; [] when none is given."""
    out = []
    for spec in specs or []:
        p = Path(str(spec)).expanduser()
        if not p.exists():
            raise DataError(f"--data {spec}: no such file or folder; expected the data set the run was trained on")
        out.append(p)
    return out


def parse_tests(specs) -> list[tuple[str, Path]]:
    """``["RAF-DB test=raf-basic.zip", ...]`` as ``[(name, path)]``, each path checked."""
    out = []
    for spec in specs or []:
        name, sep, path = str(spec).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--test {spec!r}: expected NAME=PATH, e.g. 'RAF-DB test=raf-basic.zip'")
        p = Path(path.strip()).expanduser()
        if not p.exists():
            raise DataError(f"--test {spec!r}: {p}: no such file or folder; expected a labelled data set with a test split")
        out.append((name.strip(), p))
    if not out:
        raise ConfigError("--test: give at least one labelled test set, the run's own data first")
    if len({n for n, _ in out}) != len(out):
        raise ConfigError("--test: each test set needs its own NAME")
    return out


def _accuracy(model, x, y) -> float:
    probs = np.concatenate([np.asarray(model.predict_on_batch(x[i : i + 256])) for i in range(0, len(x), 256)])
    return float((probs.argmax(1) == y).mean())


def precision_check(model, x_val, y_val) -> dict:
    """Holdout accuracy with float32 weights and with float16-rounded ones; which ships."""
    keep = [np.asarray(w.numpy()) for w in model.weights]
    fp32 = _accuracy(model, x_val, y_val)
    for w, a in zip(model.weights, shipped.with_weights_as(model, "float16")):
        w.assign(a)
    fp16 = _accuracy(model, x_val, y_val)
    for w, a in zip(model.weights, keep):
        w.assign(a)
    dtype = "float16" if abs(fp16 - fp32) <= FP16_TOLERANCE else "float32"
    return {"n": int(len(y_val)), "float32_accuracy": fp32, "float16_accuracy": fp16, "tolerance": FP16_TOLERANCE, "shipped_as": dtype}


def default_name(model: str, image_size: int, set_names, epochs: int) -> str:
    """The name a run ships under when ``fer ship --name`` is not given: the model and its input
    size, the sets it learned from, its epochs; so that two ships of one architecture differ by name.

    >>> default_name("resnet", 64, ["RAF-DB", "FER2013"], 60)
    'fer-resnet64-rafdb-fer2013-e60'
    >>> default_name("report_cnn", 100, ["synthetic faces"], 5)
    'fer-reportcnn100-syntheticfaces-e5'
    """
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "", str(text).lower()) or "data"

    return f"fer-{slug(model)}{image_size}-" + "-".join(slug(n) for n in set_names) + f"-e{epochs}"


def ship_run(run_id: str, tests, *, data=None, dest=None, name: str | None = None, results_dir=None) -> dict:
    """Ship the final model of the finished run ``run_id`` into ``dest`` (default: the package's
    weights folder); return the card. ``tests``: ``[(name, path)]`` (:func:`parse_tests`), the
    run's own data first. ``data``: the run's training sets in its order, when there are several
    (default: the first test set's path). ``name``: the card's name (default: :func:`default_name`)."""
    from fer_utils.apply.evaluate import KerasPredictor, evaluate
    from fer_utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, staged_folder
    from fer_utils.data.mixture import load_many, sources_of
    from fer_utils.models.registry import load_model
    from fer_utils.training.store import RunStore
    from fer_utils.training.trainer import split_for, target_epochs

    dest = Path(dest) if dest is not None else shipped.SHIPPED_DIR
    if dest.exists() and any(dest.iterdir()) and not (dest / shipped.CARD).exists():
        raise FerError(f"{dest}: a folder of other files; DEST is new, empty, or an earlier shipped model (with {shipped.CARD})")
    before = replaced(dest, run_id)
    store = RunStore(None if results_dir is None else Path(results_dir) / "runs")
    run = store.load(run_id)
    cfg = run.config
    epochs = target_epochs(cfg) if cfg.model != "report_cnn" else run.epochs_done
    ev = run.evaluation(epochs)
    if not ev or cfg.selection != "holdout" or not ev.get("holdout"):
        raise FerError(f"run {run_id}: not a finished run selected on a holdout ({run.epochs_done} epochs, selection "
                       f"{cfg.selection}); ship a finished 'fer train --model resnet' run")
    model, names = load_model(run.model_path(epochs, must_exist=True), compile=False)
    paths = [Path(p) for p in data] if data else [Path(tests[0][1])]
    train = load_many([str(p) for p in paths], cfg.image_size, verbose=False)
    if train.fingerprint != cfg.data:
        given = ("--data " + " --data ".join(str(p) for p in paths)) if data else f"--test {tests[0][0]}={tests[0][1]}"
        trained = str(run.metrics.get("data_source", ""))
        fix = ("give every set it was trained on, in its order, with --data" if data else
               f"it was trained on several sets ({trained}): give each with --data, in that order" if " + " in trained
               else "give the run's own data first")
        raise FerError(f"{given}: not the data run {run_id} was trained on (fingerprint {train.fingerprint[:12]}, the "
                       f"run's {cfg.data[:12]}); {fix}")
    _, _, x_val, y_val, _, _ = split_for(cfg, train)
    held = split_held(cfg, train)  # the faces x_val holds, in its order
    sets = _sets(train, paths, tests, held)
    precision = precision_check(model, x_val, y_val)
    blob, entry = shipped.weights_bytes(model, precision["shipped_as"])
    if len(blob) > MAX_BYTES:
        raise FerError(f"run {run_id}: its weights take {len(blob) / 2**20:.1f} MiB as {entry['dtype']}; at most 6 MiB ship")
    given_name, name = name, name or default_name(cfg.model, cfg.image_size, [t["name"] for t in sets] or [
        "synthetic" if train.synthetic else _set_name(tests[0][0])], epochs)
    card = {"version": shipped.CARD_VERSION, "name": name, "model": cfg.model, "run_id": run_id,
            "config": cfg.to_dict(), "class_names": list(names), "weights": entry,
            "parameters": int(model.count_params()),
            "trained_on": _trained_on(train, tests, sets, len(y_val)),
            "holdout": {"accuracy": precision[f"{precision['shipped_as']}_accuracy"], "n": precision["n"], "precision": precision},
            "training": {"epochs": epochs, "cost": run.metrics.get("cost", {}), "trained_with": ev.get("trained_with", {}),
                         "train_seconds": float(sum(r["seconds"] for r in run.history[:epochs])),
                         "command": f"fer train --model {cfg.model}" + "".join(f" --data {p.name}" for p in paths)
                                    + (f" --mix {cfg.mix}" if sets and cfg.mix != "proportional" else "")
                                    + (f" --epoch-faces {cfg.epoch_faces}" if cfg.epoch_faces else "")
                                    + f" --epochs {epochs}" + (f" --seed {cfg.seed}" if cfg.seed else "")},
            "ship_command": "fer ship " + run_id + "".join(f" --test '{n}={Path(p).name}'" for n, p in tests),
            "terms": terms([t["name"] for t in sets]), "tests": {}, "test_order": [n for n, _ in tests]}
    if before:
        card["replaces"] = before
    if sets:
        card["ship_command"] = card["ship_command"].replace(f"fer ship {run_id}", f"fer ship {run_id}" + "".join(
            f" --data {p.name}" for p in paths), 1)
    if given_name:
        card["ship_command"] += f" --name {given_name}"
    with staged_folder(dest) as stage:
        for old in stage.iterdir():
            old.unlink()
        atomic_write_bytes(stage / shipped.WEIGHTS, blob)
        atomic_write_json(stage / shipped.CARD, card)
        net, _ = shipped.load(stage)  # what users get, not the file it came from
        predictor = KerasPredictor.of(net, names, "the shipped model")
        if sets:  # each set's own held-out faces, with the shipped file
            right = predictor.predict(x_val).argmax(1) == y_val
            src = sources_of(train, "train")[held]
            card["holdout"]["by_set"] = {t["name"]: {"accuracy": float(right[src == i].mean()), "n": int((src == i).sum())}
                                         for i, t in enumerate(sets)}
        for test_name, path in tests:
            r = evaluate(predictor, path)
            card["tests"][test_name] = {k: r[k] for k in ("n", "correct", "accuracy", "ci95", "mean_class_accuracy",
                                                          "per_class_accuracy", "support", "confusion", "confusion_rows",
                                                          "confusion_cols")
                                        if k in r} | {"source": Path(str(r["data"]["source"])).name,
                                                      "fingerprint": r["data"]["fingerprint"]}
        card["summary_line"] = summary_line(card)
        atomic_write_json(stage / shipped.CARD, card)
        atomic_write_text(stage / shipped.CARD_MD, render_card(card))
    return card


def replaced(dest, run_id: str) -> list[dict]:
    """What run ``run_id`` shipped into ``dest`` replaces: the model there (name, run, holdout and
    test accuracies) and, after it, what that one had replaced; newest first. [] for an empty or
    unreadable ``dest``; the same run shipped again keeps the lineage it had."""
    try:
        old = shipped.read_card(dest)
    except FerError:
        return []
    def as_dict(v) -> dict:  # a hand-edited or damaged card loses its lineage, never the new ship
        return v if isinstance(v, dict) else {}

    def entry(r: dict) -> dict:
        tests = [t for t in r.get("tests") or [] if isinstance(t, dict) and "name" in t] if isinstance(r.get("tests"), list) else []
        return {"name": r.get("name"), "run_id": r.get("run_id"), "holdout": r.get("holdout"),
                "tests": [{"name": t["name"], "accuracy": t.get("accuracy")} for t in tests]}

    earlier = [entry(r) for r in old.get("replaces") if isinstance(r, dict)] if isinstance(old.get("replaces"), list) else []
    if old.get("run_id") == run_id:
        return earlier
    tests = {n: as_dict(r) for n, r in as_dict(old.get("tests")).items()}
    summary = {"name": old.get("name"), "run_id": old.get("run_id"), "holdout": as_dict(old.get("holdout")).get("accuracy"),
               "tests": [{"name": n, "accuracy": r.get("accuracy")} for n, r in ordered_tests({**old, "tests": tests})]}
    return [summary, *earlier]


def split_held(cfg, train):
    """The indices of the held-out faces in ``train``'s train split (what :func:`split_for` validates on)."""
    from fer_utils.training.trainer import holdout_split

    return holdout_split(cfg, train)[1]


def _sets(train, paths, tests, held) -> list[dict]:
    """Each training set of a run on several (name, file, layout, faces, held out); [] for one set.
    A set is named like the test set of the same path ('RAF-DB test' -> 'RAF-DB'), else by its file."""
    from fer_utils.data.mixture import names_of, sources_of

    if not names_of(train):
        return []
    by_path = {Path(p).resolve(): _set_name(n) for n, p in tests}
    src = sources_of(train, "train")
    held = src[held]
    layouts = str(train.layout).removeprefix("mixture of ").split(" + ")
    parts = layouts if len(layouts) == len(paths) else [None] * len(paths)
    return [{"name": by_path.get(p.resolve(), p.stem), "source": p.name, "layout": layout or "?",
             "train_faces": int((src == i).sum()), "held_out": int((held == i).sum())}
            for i, (p, layout) in enumerate(zip(paths, parts))]


def _trained_on(train, tests, sets, held_out: int) -> dict:
    one = {"name": "synthetic faces" if train.synthetic else f"{_set_name(tests[0][0])}, train split",
           "source": Path(str(train.source)).name, "layout": train.layout, "fingerprint": train.fingerprint,
           "synthetic": bool(train.synthetic), "train_faces": int(len(train.y_train)), "held_out": int(held_out)}
    if sets:
        one.update(name=" + ".join(t["name"] for t in sets) + ", train splits", source=" + ".join(t["source"] for t in sets),
                   sets=sets)
    return one


def _set_name(test_name: str) -> str:
    """The data set a test split belongs to: its name less a last word naming a test split.

    >>> _set_name("RAF-DB test"), _set_name("FER2013 PublicTest"), _set_name("toy"), _set_name("my tests")
    ('RAF-DB', 'FER2013', 'toy', 'my tests')
    """
    words = test_name.split()
    return " ".join(words[:-1]) if len(words) > 1 and words[-1].lower().endswith("test") else test_name
