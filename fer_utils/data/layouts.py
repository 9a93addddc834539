"""Where the labelled faces are: the three RAF-DB layouts, and a plain tree of class folders.

A scanner turns a :class:`~fer_utils.data.sources.Source` into a list of (split, file, class)
entries, or raises :class:`DataError` naming the file, what was expected and the fix (docs/data.md):

``official``
    ``basic/EmoLabel/list_patition_label.txt`` ("train_00001.jpg 5" per line, labels 1..7) and
    ``basic/Image/aligned/train_00001_aligned.jpg``. Note the official quirk: the label file
    names ``train_00001.jpg``, the file on disk is ``train_00001_aligned.jpg``.
``csv``
    The popular re-packaging: ``DATASET/{train,test}/{1..7}/<name>_aligned.jpg`` with
    ``train_labels.csv`` / ``test_labels.csv`` (columns ``image,label``).
``report``
    The course report's ``class/{train,test}/<ClassName>/<file>``, one folder per class, as
    Keras' ``flow_from_directory`` wants it. The folder passed may be ``class/`` itself or any
    folder above it.
``folders``
    Only when one split is asked for (``split="test"``, what evaluating a model needs): any tree
    of ``<Class>/`` folders, with or without a ``train/``/``test/`` level above them, folder names
    matched case-insensitively through :data:`CLASS_ALIASES` (angry, happy, ...). Folders that are
    not one of the 7 classes (``contempt``, anything else) are reported and left out; a set that
    lacks some classes is fine.

Training needs both splits and every class, so without ``split`` the scanners stay strict.
Whatever the layout, labels are mapped by class NAME onto one canonical order, RAF-DB's own
(:data:`CLASS_NAMES`), so that label 0 is Surprise everywhere.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from fer_utils.errors import DataError, NoLayout
from fer_utils.data.classes import CLASS_ALIASES, CLASS_NAMES, RAF_ID_TO_NAME, canonical_class, raf_label  # noqa: F401  (re-exported)
from fer_utils.data.sources import Source, is_image

SPLITS = ("train", "test")
#: A data set whose root holds this file says it is synthetic (written by ``fer synth``).
SYNTHETIC_MARKER = "SYNTHETIC.md"

LAYOUT_HELP = (
    "expected one of: (1) official RAF-DB 'basic/EmoLabel/list_patition_label.txt' with "
    "'basic/Image/aligned/'; (2) 'DATASET/{train,test}/{1..7}/' with 'train_labels.csv' and "
    "'test_labels.csv'; (3) the report's 'class/{train,test}/<ClassName>/' (e.g. "
    "class/train/Happiness/). See docs/data.md"
)


@dataclass
class Entry:
    split: str
    rel: str  # path inside the source
    label: str  # canonical class name


@dataclass
class Scan:
    layout: str
    base: str  # prefix inside the source where the layout starts ("" for the root)
    entries: list[Entry]
    problems: list[str] = field(default_factory=list)
    synthetic: bool = False


def detect(source: Source, split: str | None = None) -> Scan:
    """Find the layout in ``source`` and list its labelled images, or raise :class:`DataError`.

    ``split=None`` wants both splits (training); ``split="train"`` or ``"test"`` wants that one
    and also reads a plain tree of class folders.
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"split {split!r}: expected 'train' or 'test'")
    if source.duplicates:
        name, k = sorted(source.duplicates.items())[0]
        raise DataError(
            f"{source.display(name)}: the zip holds {k} entries with this path ({len(source.duplicates)} such "
            f"paths); expected each file once. Rebuild the zip from the unpacked folder"
        )
    splits = SPLITS if split is None else (split,)
    files = source.files
    label_files = [f for f in files if f.endswith("EmoLabel/list_patition_label.txt")]
    if label_files:
        return _mark_synthetic(source, _scan_official(source, min(label_files, key=len), splits))
    csvs = [f for f in files if PurePosixPath(f).name == f"{splits[0]}_labels.csv"]
    if csvs:
        return _mark_synthetic(source, _scan_csv(source, min(csvs, key=len), splits))
    if split is None:
        report = _find_report_base(files)
        if report is not None:
            return _mark_synthetic(source, _scan_report(source, report))
    else:
        scan = _scan_folders(source, split)
        if scan is not None:
            return _mark_synthetic(source, scan)
    raise NoLayout(f"{source.path}: no recognisable RAF-DB layout; {LAYOUT_HELP}. {_found(source)}")


def _found(source: Source) -> str:
    """What is there, for the no-layout error: the top-level entries with their file counts."""
    files = source.files
    if not files:
        return "Found nothing (an empty folder or zip)"
    top = Counter(f.split("/", 1)[0] + ("/" if "/" in f else "") for f in files)
    listing = ", ".join(f"{k} ({n} files)" if k.endswith("/") else k for k, n in sorted(top.items())[:8])
    more = f" and {len(top) - 8} more" if len(top) > 8 else ""
    text = f"Found {len(files)} files: {listing}{more}"
    if any(canonical_class(k.rstrip("/")) for k in top):
        text += ("; these look like the class folders of one split: pass the folder that holds train/ and "
                 "test/ (e.g. class/), or evaluate this one split alone")
    return text


def _parent(rel: str) -> str:
    p = str(PurePosixPath(rel).parent)
    return "" if p == "." else p + "/"


def _mark_synthetic(source: Source, scan: Scan) -> Scan:
    """The scan, the source's own problems first (unlisted folders, unreadable names), marked synthetic or not."""
    scan.problems = [f"{rel}: {why}" for rel, why in source.problems] + scan.problems
    base = scan.base
    candidates = {base + SYNTHETIC_MARKER, (_parent(base.rstrip("/")) if base else "") + SYNTHETIC_MARKER}
    scan.synthetic = any(c in source.files for c in candidates)
    if not scan.synthetic and not base and not source.is_zip:  # the report's class/ folder itself
        scan.synthetic = (source.path.parent / SYNTHETIC_MARKER).is_file()
    return scan


class _Labels:
    """The lines of a label file seen so far: a repeated line is counted once (and reported),
    the same image with another label is an error naming both lines."""

    def __init__(self, where: str):
        self.where, self.seen, self.repeats = where, {}, []

    def new(self, name: str, label: str, lineno: int) -> bool:
        if name not in self.seen:
            self.seen[name] = (label, lineno)
            return True
        first_label, first_line = self.seen[name]
        if first_label != label:
            raise DataError(
                f"{self.where}, line {lineno}: {name!r} is labelled {label} here but {first_label} on line "
                f"{first_line}; expected one label per image. Delete the wrong line"
            )
        self.repeats.append(f"{self.where}, line {lineno}: repeats line {first_line} ({name!r}); counted once")
        return False

    def report(self, problems: list[str]) -> None:
        if self.repeats:
            warnings.warn(f"{self.where}: {len(self.repeats)} repeated label line(s), each counted once "
                          f"(first: {self.repeats[0].split(', ', 1)[1]})", stacklevel=3)
            problems.extend(self.repeats)


def _scan_official(source: Source, label_file: str, splits) -> Scan:
    base = label_file[: -len("EmoLabel/list_patition_label.txt")]
    image_dir = base + "Image/aligned/"
    images = {f[len(image_dir):]: f for f in source.files if f.startswith(image_dir) and is_image(f)}
    where = source.display(label_file)
    if not images:
        raise DataError(
            f"{source.display(image_dir)}: no aligned images. Expected the official layout's "
            f"'Image/aligned/train_00001_aligned.jpg' next to '{label_file}'; unpack "
            f"basic/Image/aligned.zip there"
        )
    entries, used, problems, labels = [], set(), [], _Labels(where)
    text = source.read(label_file).decode("utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(
                f"{where}, line {lineno}: expected '<name>.jpg <label>', got {line!r}; fix or "
                f"remove that line"
            )
        name, lab = parts
        label = raf_label(lab, f"{where}, line {lineno}")
        stem = name.rsplit(".", 1)[0]
        split = "train" if stem.startswith("train") else "test" if stem.startswith("test") else None
        if split is None:
            raise DataError(
                f"{where}, line {lineno}: {name!r} is neither train_* nor test_*; the official "
                f"label file names every image train_NNNNN.jpg or test_NNNN.jpg"
            )
        candidates = [f"{stem}_aligned.jpg", name]
        found = next((c for c in candidates if c in images), None)
        if found is None:
            raise DataError(
                f"{where}, line {lineno}: label entry {name!r} has no image; expected "
                f"{source.display(image_dir + candidates[0])}. Restore the image, or delete the "
                f"line from the label file"
            )
        used.add(found)
        if labels.new(name, label, lineno) and split in splits:
            entries.append(Entry(split, images[found], label))
    unlabelled = sorted(set(images) - used)
    if unlabelled:
        raise DataError(
            f"{source.display(image_dir + unlabelled[0])}: image has no label in {where} "
            f"({len(unlabelled)} such images). Add a '<name>.jpg <1..7>' line for it or move it out"
        )
    labels.report(problems)
    _check_splits(entries, where, splits)
    return Scan("official", base, entries, problems)


def _scan_csv(source: Source, first_csv: str, splits) -> Scan:
    base = _parent(first_csv)
    entries: list[Entry] = []
    problems: list[str] = []
    for split in splits:
        csv_rel = f"{base}{split}_labels.csv"
        if csv_rel not in source.files:
            raise DataError(
                f"{source.display(csv_rel)}: split '{split}' is missing. Expected "
                f"'{split}_labels.csv' (columns image,label) beside 'train_labels.csv'; restore it"
            )
        # Images of this split: any image under a '<split>/' folder below base.
        images: dict[str, list[str]] = {}
        for f in source.files:
            if f.startswith(base) and is_image(f) and f"/{split}/" in "/" + f[len(base):]:
                images.setdefault(PurePosixPath(f).name, []).append(f)
        where = source.display(csv_rel)
        labels = _Labels(where)
        rows = list(csv.reader(io.StringIO(source.read(csv_rel).decode("utf-8-sig", errors="replace"))))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["image", "label"]:
            raise DataError(f"{where}: expected a header 'image,label', got {rows[0] if rows else 'an empty file'}; fix the header")
        used = set()
        for lineno, row in enumerate(rows[1:], 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise DataError(f"{where}, line {lineno}: expected 'image,label', got {row!r}; fix or remove that line")
            name, lab = row[0].strip(), row[1].strip()
            label = raf_label(lab, f"{where}, line {lineno}")
            paths = images.get(name) or images.get(name.replace(".jpg", "_aligned.jpg"))
            if not paths:
                raise DataError(
                    f"{where}, line {lineno}: label entry {name!r} has no image under "
                    f"{source.display(base + 'DATASET/' + split)}/<label>/; restore the image or "
                    f"delete the row"
                )
            if not labels.new(name, label, lineno):
                continue
            # Prefer the copy inside the folder named after its label.
            lab_dir = f"/{int(lab)}/"
            path = next((p for p in paths if lab_dir in "/" + p), paths[0])
            if lab_dir not in "/" + path:
                problems.append(f"{source.display(path)}: CSV says label {lab}, folder says otherwise; the CSV wins")
            used.add(path)
            entries.append(Entry(split, path, label))
        unlabelled = sorted(p for ps in images.values() for p in ps if p not in used)
        if unlabelled:
            raise DataError(
                f"{source.display(unlabelled[0])}: image has no label in {where} "
                f"({len(unlabelled)} such images). Add an 'image,label' row for it or move it out"
            )
        labels.report(problems)
    _check_splits(entries, source.display(base), splits)
    return Scan("csv", base, entries, problems)


def _find_report_base(files: list[str]) -> str | None:
    """The shallowest folder X with X/train/<Class>/image and X/test/... (X may be the root)."""
    bases = {}
    for f in files:
        parts = f.split("/")
        if len(parts) >= 3 and parts[-3] in SPLITS and canonical_class(parts[-2]) and is_image(f):
            base = "/".join(parts[:-3])
            bases[base + "/" if base else ""] = True
    if not bases:
        return None
    return min(bases, key=lambda b: (b.count("/"), b != "class/" and not b.endswith("/class/"), b))


def _scan_report(source: Source, base: str) -> Scan:
    entries: list[Entry] = []
    problems: list[str] = []
    for split in SPLITS:
        split_dir = f"{base}{split}/"
        in_split = [f for f in source.files if f.startswith(split_dir)]
        if not in_split:
            raise DataError(
                f"{source.display(split_dir.rstrip('/'))}: split '{split}' is missing. Expected "
                f"one folder per emotion under it, e.g. {base}{split}/Happiness/; create it"
            )
        folders: dict[str, list[str]] = {}
        for f in in_split:
            rest = f[len(split_dir):].split("/")
            if len(rest) < 2:
                problems.append(f"{source.display(f)}: a file directly under {split}/ belongs to no class; ignored")
                continue
            folders.setdefault(rest[0], []).append(f)
        seen = {}
        for folder, fs in sorted(folders.items()):
            name = canonical_class(folder)
            if name is None:
                raise DataError(
                    f"{source.display(split_dir + folder)}: '{folder}' is not an emotion class. "
                    f"Expected one folder per class named {', '.join(CLASS_NAMES)}; rename or "
                    f"move it"
                )
            if name in seen:
                raise DataError(
                    f"{source.display(split_dir + folder)}: folders '{seen[name]}' and '{folder}' "
                    f"both mean {name}; merge them"
                )
            seen[name] = folder
            for f in fs:
                if is_image(f):
                    entries.append(Entry(split, f, name))
                else:
                    problems.append(f"{source.display(f)}: not an image file (by suffix); ignored")
        for name in CLASS_NAMES:
            if name not in seen:
                raise DataError(
                    f"{source.display(split_dir + name)}: class folder missing. Expected one "
                    f"folder per class under {split_dir} ({', '.join(CLASS_NAMES)}); create it "
                    f"with that class's images"
                )
            if not any(e.split == split and e.label == name for e in entries):
                raise DataError(
                    f"{source.display(split_dir + seen[name])}: class folder is empty. Expected "
                    f"images of {name}; add them, or check the copy finished"
                )
    return Scan("report", base, entries, problems)


def _scan_folders(source: Source, split: str) -> Scan | None:
    """A plain tree ``[base/][train|test/]<Class>/<image>``; None when no class folder is found."""
    groups: dict[str, list[tuple[str | None, str, str]]] = {}
    for f in source.images:
        parts = f.split("/")
        if len(parts) < 2:
            continue
        folder, prefix, sp = parts[-2], parts[:-2], None
        if prefix and prefix[-1].lower() in SPLITS:
            sp, prefix = prefix[-1].lower(), prefix[:-1]
        groups.setdefault("".join(p + "/" for p in prefix), []).append((sp, folder, f))

    def known(items):
        return sum(1 for _, folder, _ in items if canonical_class(folder))

    bases = [b for b in groups if known(groups[b])]
    if not bases:
        return None
    base = max(bases, key=lambda b: (known(groups[b]), -b.count("/"), b))
    items = groups[base]
    problems: list[str] = []
    elsewhere = sum(len(v) for b, v in groups.items() if b != base) + sum(1 for f in source.images if "/" not in f)
    if elsewhere:
        problems.append(f"{source.display(base or '.')}: {elsewhere} images outside its class folders left out")
    split_levels = sorted({sp for sp, _, _ in items if sp})
    if split_levels:
        if split not in split_levels:
            raise DataError(
                f"{source.display(base + split)}: no '{split}' split; found only {', '.join(s + '/' for s in split_levels)}. "
                f"Expected {base}{split}/<Class>/ images; to use another split, pass its folder itself"
            )
        loose = sum(1 for sp, _, _ in items if sp is None)
        if loose:
            problems.append(f"{source.display(base or '.')}: {loose} images in class folders outside train/ and test/ left out")
        items = [it for it in items if it[0] == split]
    entries, left_out, folders_of = [], Counter(), {}
    for sp, folder, f in items:
        name = canonical_class(folder)
        where = f"{base}{sp + '/' if sp else ''}{folder}"
        if name is None:
            left_out[where] += 1
            continue
        folders_of.setdefault(name, set()).add(where)
        entries.append(Entry(split, f, name))
    for where, n in sorted(left_out.items()):
        folder = where.rsplit("/", 1)[-1]
        why = "RAF-DB has no Contempt" if folder.lower() == "contempt" else "not a known name of one"
        problems.append(f"{source.display(where)}: '{folder}' is not one of the 7 classes ({why}); {n} images left out")
    for name, wheres in sorted(folders_of.items()):
        if len(wheres) > 1:
            problems.append(f"{source.display(base or '.')}: folders {', '.join(sorted(wheres))} all mean {name}; merged")
    missing = [c for c in CLASS_NAMES if c not in folders_of]
    if missing:
        problems.append(f"{source.display(base or '.')}: no images of {', '.join(missing)} (fine: those classes are left out of the scores)")
    return Scan("folders", base, entries, problems)


def _check_splits(entries: list[Entry], where: str, splits=SPLITS) -> None:
    for split in splits:
        if not any(e.split == split for e in entries):
            raise DataError(
                f"{where}: split '{split}' is missing (no {split} images listed). Expected both "
                f"train and test images; restore the {split} part of the data set"
            )

