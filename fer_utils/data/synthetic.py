"""The embedded synthetic data set: cartoon faces with seven expressions, NOT RAF-DB.

RAF-DB is research-only and cannot ship with the project, so ``make report`` runs on faces this
module draws. They exist so that every stage of the pipeline (loading, training, the sweeps,
sorting unlabelled faces) runs end to end on data with the same shape, class names and class
shares as RAF-DB, and a difficulty that leaves room between chance and 100 %. They say nothing
about how well a model recognises real expressions.

Layout (the course report's own, so the ``report`` loader reads it)::

    out/class/train/<Class>/train_00042.jpg     labelled, 100x100 RGB JPEG
    out/class/test/<Class>/test_00007.jpg
    out/unlabelled/34_1_2_synth00012.jpg.chip.jpg   UTKFace-style names: age_gender_race
    out/unlabelled_truth.csv                     file,label,age (kept outside the folder)
    out/SYNTHETIC.md                             the marker the loader looks for
    out/synthetic.json                           the parameters, to recognise a rerun

Expressions are drawn from FACS-like action units (AUs), each a continuous number:

==============  =======================================================================
Happiness       lip corners up (AU12), cheeks raised (AU6), eyes narrowed, teeth shown
Sadness         inner brows raised (AU1), brows drawn together, lip corners down (AU15)
Surprise        whole brows up (AU1+2), eyes wide (AU5), jaw dropped (AU26/27)
Fear            brows raised AND drawn together (AU1+2+4), eyes wide, lips stretched (AU20)
Anger           brows lowered and drawn together (AU4), eyes narrowed (AU7), lips pressed
Disgust         nose wrinkled (AU9), upper lip raised (AU10), brows slightly lowered
Neutral         none
==============  =======================================================================

Every face has an intensity that scales its class's action units, plus small random activations
of every AU: most draw it from :data:`INTENSITY`, a share :data:`WEAK_SHARE` from the weaker
:data:`WEAK_INTENSITY`. A weak expression is genuinely ambiguous: a faint fear looks like a
faint surprise, a faint disgust like a faint anger, and any faint expression like neutral.

Difficulty is calibrated for the ``demo`` profile (72x72, 1,500 training faces, a few epochs,
so only a few dozen optimizer steps per run): the cues are large and high-contrast at 72 px and
the nuisances, all present, are moderate, so that the report's CNN (depth 4) reaches about
60-90 % test accuracy in 3 epochs while a linear classifier on raw pixels stays well below it.
``benchmarks/bench_synthetic.py`` measures this.

Nuisance variation, which a model has to learn to ignore:

* identity: face width and length, a wide range of skin tones (light to very dark), hair
  colour and style (none, short, fringe, long), eye spacing and size, iris colour, nose and
  mouth size; ages: older faces get forehead lines (which look like a weak brow raise) and
  grey hair; children (ages < 13, only in the unlabelled set) get a big round head, big low-set
  eyes and a small nose and mouth;
* head pose: in-plane rotation (+-12 degrees), shift and scale, mirror;
* lighting: a brightness gradient from a random direction, contrast and brightness changes,
  and about 10 % grayscale images, as in RAF-DB;
* background clutter (random shapes), shoulders and clothes colour;
* image quality: Gaussian blur, sensor noise and JPEG artefacts (quality 35..95);
* occlusions on about 15 % of faces: glasses or sunglasses, a hand over the mouth or a cheek,
  or a random block;
* label noise: about 3 % of labelled faces are drawn with another expression than the folder
  they are filed in (RAF-DB's crowd-sourced labels are noisy too).

Class shares follow RAF-DB's training split (:data:`RAF_TRAIN_COUNTS`), with a minimum count per
class so that tiny sets have every class. Generation is deterministic: every image draws its
parameters from its own generator ``np.random.default_rng([seed, split_id, index])`` and is
encoded with fixed JPEG settings, so the same seed and sizes give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer_utils.errors import ConfigError, DataError
from fer_utils.data.faces_cues import GRAYSCALE_SHARE, OCCLUSION_SHARE, PROTOTYPES  # noqa: F401 - re-exported
from fer_utils.data.faces_draw import (  # noqa: F401 - re-exported: the generator's settings, in one place
    GENERATOR_VERSION,
    IMAGE_SIZE,
    INTENSITY,
    LABEL_NOISE,
    SPLIT_IDS,
    WEAK_INTENSITY,
    WEAK_SHARE,
    render,
)
from fer_utils.data.layouts import CLASS_NAMES, SYNTHETIC_MARKER
from fer_utils.progress import progress_bar
from fer_utils.data.sources import check_output_folder, write_error

MANIFEST = "synthetic.json"
TRUTH_CSV = "unlabelled_truth.csv"
_PLAN_STREAM = 0x91A4  # a separate random stream for the label plan

#: RAF-DB train counts per class (of 12,271), the target class shares.
RAF_TRAIN_COUNTS = {
    "Surprise": 1290, "Fear": 281, "Disgust": 717, "Happiness": 4772,
    "Sadness": 1982, "Anger": 705, "Neutral": 2524,
}
CLASS_SHARES = np.array([RAF_TRAIN_COUNTS[c] for c in CLASS_NAMES], dtype=float) / sum(RAF_TRAIN_COUNTS.values())
MIN_PER_CLASS = 2

# --------------------------------------------------------------------------------------------
# The plan: which label each image gets, before anything is drawn.


def class_counts(n: int, min_count: int = MIN_PER_CLASS) -> dict[str, int]:
    """Images per class for a split of ``n``: RAF-DB's shares, every class at least ``min_count``.

    >>> class_counts(2000)
    {'Surprise': 210, 'Fear': 46, 'Disgust': 117, 'Happiness': 778, 'Sadness': 323, 'Anger': 115, 'Neutral': 411}
    >>> class_counts(14)
    {'Surprise': 2, 'Fear': 2, 'Disgust': 2, 'Happiness': 2, 'Sadness': 2, 'Anger': 2, 'Neutral': 2}
    """
    floor = min(min_count, n // len(CLASS_NAMES))
    target = CLASS_SHARES * n
    counts = np.maximum(np.floor(target).astype(int), floor)
    # Largest remainders get the leftovers; the largest classes give back what the floor took.
    while counts.sum() < n:
        counts[np.argmax(target - counts)] += 1
    while counts.sum() > n:
        spare = np.where(counts > floor, counts - target, -np.inf)
        counts[np.argmax(spare)] -= 1
    return {c: int(k) for c, k in zip(CLASS_NAMES, counts)}


def plan_labels(n: int, seed: int, split: str) -> np.ndarray:
    """Class index of each image of a split, in a seeded random order (exact class counts)."""
    counts = class_counts(n)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), [counts[c] for c in CLASS_NAMES])
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], _PLAN_STREAM])
    return rng.permutation(labels)


# --------------------------------------------------------------------------------------------
# Writing a whole set, atomically.


def generate(out, n_train: int = 2000, n_test: int = 500, n_unlabelled: int = 300, seed: int = 0,
             progress: bool = True) -> dict:
    """Draw a synthetic data set into ``out`` (the report's layout) and return a summary.

    Parameters
    ----------
    out : folder
        Created whole or not at all: files are written to a hidden sibling folder that is
        renamed into place at the end. An existing synthetic set (it holds ``SYNTHETIC.md``)
        is kept as is when it was made with the same parameters, and replaced otherwise, but
        only when it holds nothing but the generator's own files: a notes file or a results
        folder put there by someone is never deleted (the run is refused, naming it). Any
        other non-empty folder is refused too.
    n_train, n_test : int
        Labelled faces per split (at least 7, so every class is present; see
        :func:`class_counts`).
    n_unlabelled : int
        Faces in ``out/unlabelled`` (UTKFace-style names, no label in the name).
    seed : int
        Same seed and sizes give byte-identical files.

    Returns
    -------
    dict with ``path``, ``params``, ``counts`` (split -> class -> n), ``seconds`` and
    ``reused`` (True when an identical set was already there and nothing was written).
    """
    out = Path(out).expanduser()
    params = _check_params(n_train, n_test, n_unlabelled, seed)
    t0 = time.perf_counter()
    previous = _previous_set(out)
    if previous is not None and previous.get("params") == params:
        return {**previous, "path": str(out), "seconds": time.perf_counter() - t0, "reused": True}
    if previous is not None:
        foreign = foreign_files(out)
        if foreign:
            raise DataError(
                f"{out / foreign[0]}: not made by the generator ({len(foreign)} such files or folders in {out}); "
                f"regenerating with other parameters replaces the whole set and would delete them. Move them "
                f"out of {out}, or pass another --out"
            )
    check_output_folder(out.parent, "--out")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts = _write_set(tmp, params, progress)
        # No absolute path in the files: the same set must hash the same wherever it lies.
        summary = {"params": params, "counts": counts}
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / SYNTHETIC_MARKER).write_text(_readme(params, counts))
        _swap_into_place(tmp, out)
    except OSError as exc:  # a full disk or a read-only file system: the old set (if any) stays whole
        raise write_error(out, exc, f"{out} is as it was; free space and run the same command again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**summary, "path": str(out), "seconds": time.perf_counter() - t0, "reused": False}


def _check_params(n_train, n_test, n_unlabelled, seed) -> dict:
    for name, value, least in (("n_train", n_train, len(CLASS_NAMES)), ("n_test", n_test, len(CLASS_NAMES)),
                               ("n_unlabelled", n_unlabelled, 0), ("seed", seed, 0)):
        if int(value) != value or value < least:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} {value!r}: expected an integer >= {least}; pass e.g. {flag} {max(least, 0) or 0}")
    return {"generator_version": GENERATOR_VERSION, "image_size": IMAGE_SIZE, "seed": int(seed),
            "n_train": int(n_train), "n_test": int(n_test), "n_unlabelled": int(n_unlabelled)}


def _previous_set(out: Path) -> dict | None:
    """The manifest of a synthetic set at ``out``; None if ``out`` is absent or empty.

    Raises DataError for anything else: we never delete a folder we did not make.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataError(f"{out}: is a file; expected a folder for the synthetic data set. Pick another --out or remove the file")
    if not any(out.iterdir()):
        return None
    if not (out / SYNTHETIC_MARKER).is_file():
        raise DataError(
            f"{out}: folder is not empty and holds no {SYNTHETIC_MARKER}, so it is not a synthetic "
            f"set made by this generator; refusing to overwrite it. Pass an empty or new folder "
            f"as the output, or move its contents away"
        )
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}  # an older or damaged synthetic set: ours to replace


_OURS = (
    re.compile(r"(SYNTHETIC\.md|synthetic\.json|unlabelled_truth\.csv)"),
    re.compile(r"class(/(train|test)(/(" + "|".join(CLASS_NAMES) + r")(/(train|test)_\d{5}\.jpg)?)?)?"),
    re.compile(r"unlabelled(/\d+_\d_\d_synth\d{5}\.jpg\.chip\.jpg)?"),
)


def foreign_files(out) -> list[str]:
    """Files and folders under ``out`` that the generator does not make (sorted relative paths;
    a foreign folder is listed, not its contents). Empty for a set as generated."""
    out = Path(out)
    found = []
    for dirpath, dirnames, filenames in os.walk(out):
        rel = Path(dirpath).relative_to(out).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for d in sorted(dirnames):
            if not any(p.fullmatch(prefix + d) for p in _OURS[1:]):
                found.append(prefix + d + "/")
        dirnames[:] = [d for d in dirnames if prefix + d + "/" not in found]
        found += [prefix + f for f in filenames if not any(p.fullmatch(prefix + f) for p in _OURS)]
    return sorted(found)


def _swap_into_place(tmp: Path, out: Path) -> None:
    # Two renames: the old set is moved aside first, so `out` is never half-written.
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _jobs(params: dict):
    """(split, index, label) of every image, in a fixed order."""
    for split in ("train", "test", "unlabelled"):
        n = params[f"n_{split}"]
        for i, label in enumerate(plan_labels(n, params["seed"], split)):
            yield split, i, int(label)


def _write_set(root: Path, params: dict, progress: bool) -> dict:
    jobs = list(_jobs(params))
    counts = {s: {c: 0 for c in CLASS_NAMES} for s in SPLIT_IDS}
    truth = []
    for split in ("train", "test"):
        for c in CLASS_NAMES:
            (root / "class" / split / c).mkdir(parents=True, exist_ok=True)
    (root / "unlabelled").mkdir(parents=True, exist_ok=True)

    def work(job):
        split, i, label = job
        data, meta = render(params["seed"], split, i, label)
        if split == "unlabelled":
            name = f"{meta['age']}_{meta['gender']}_{meta['race']}_synth{i:05d}.jpg.chip.jpg"
            path = root / "unlabelled" / name
        else:
            name = f"{split}_{i:05d}.jpg"
            path = root / "class" / split / CLASS_NAMES[label] / name
        path.write_bytes(data)
        return split, name, meta

    bar = progress_bar(len(jobs), "synth", progress)
    # Threads: PIL's resize, filters and JPEG encoder release the GIL; every image has its own
    # generator, so the order threads finish in does not change a byte.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for split, name, meta in pool.map(work, jobs, chunksize=16):
            counts[split][meta["label"]] += 1
            if split == "unlabelled":
                truth.append((name, meta["label"], meta["age"]))
            bar.update(1)
    bar.close()
    with open(root / TRUTH_CSV, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "label", "age"])
        w.writerows(truth)
    return counts


def _readme(params: dict, counts: dict) -> str:
    rows = "\n".join(
        f"| {c} | {counts['train'][c]} | {counts['test'][c]} | {counts['unlabelled'][c]} |" for c in CLASS_NAMES
    )
    return f"""# SYNTHETIC data set: this is NOT RAF-DB

These faces were drawn by `fer_utils.data.synthetic` (generator version {params['generator_version']})
so that the pipeline runs without the research-only RAF-DB. Numbers obtained on them test the
code, not facial expression recognition; do not report them as RAF-DB results.

Regenerate with `fer synth` or
`python -c "from fer_utils.data.synthetic import generate; generate('<this folder>', n_train={params['n_train']}, n_test={params['n_test']}, n_unlabelled={params['n_unlabelled']}, seed={params['seed']})"`:
the same seed and sizes give byte-identical files.

- seed: {params['seed']}
- sizes: {params['n_train']} train, {params['n_test']} test, {params['n_unlabelled']} unlabelled
- images: {params['image_size']}x{params['image_size']} RGB JPEG (about {int(GRAYSCALE_SHARE * 100)}% grayscale), like RAF-DB's aligned crops
- expressions: FACS-like action units scaled by an intensity drawn from {INTENSITY} ({int(WEAK_SHARE * 100)}% from {WEAK_INTENSITY}), so weak
  expressions are ambiguous; about {int(LABEL_NOISE * 100)}% of labelled faces carry a wrong label on purpose
- nuisances: identity (face shape, skin tone, hair, eyes), in-plane pose, lighting, background
  clutter, blur, noise, JPEG quality, occlusions (glasses, hand, block) on about
  {int(OCCLUSION_SHARE * 100)}% of faces; children and old faces in the unlabelled set
- class shares follow RAF-DB's training split (at least {MIN_PER_CLASS} per class and split)

Layout: `class/{{train,test}}/<Class>/*.jpg` (the course report's), `unlabelled/` with
UTKFace-style names `age_gender_race_synthNNNNN.jpg.chip.jpg` (no label in the name), and
`{TRUTH_CSV}` with the true label and age of each unlabelled face.

| class | train | test | unlabelled |
|---|---|---|---|
{rows}
"""


# --------------------------------------------------------------------------------------------
# Looking at it (the contact sheet itself is fer_utils.study.figures.synthetic_contact_sheet)


def sheet_title(root) -> str:
    """What the set is (seed, sizes, generator version), never where it lies."""
    try:
        p = json.loads((Path(root) / MANIFEST).read_text())["params"]
    except (OSError, ValueError, KeyError):
        return Path(root).name
    return (f"seed {p['seed']}, {p['n_train']} train / {p['n_test']} test faces, "
            f"generator version {p['generator_version']}")
