"""Read RAF-DB (or the synthetic stand-in) into uint8 arrays, from a folder or a zip.

Three layouts are recognised (see ``../shared/data/README.md`` and the project README):

``official``
    ``basic/EmoLabel/list_patition_label.txt`` ("train_00001.jpg 5" per line, labels 1..7) and
    ``basic/Image/aligned/train_00001_aligned.jpg``. Note the official quirk: the label file
    names ``train_00001.jpg``, the file on disk is ``train_00001_aligned.jpg``.
``csv``
    The popular re-packaging: ``DATASET/{train,test}/{1..7}/<name>_aligned.jpg`` with
    ``train_labels.csv`` / ``test_labels.csv`` (columns ``image,label``).
``report``
    The course report's ``class/{train,test}/<ClassName>/<file>``, one folder per class, as
    Keras' ``flow_from_directory`` wants it.

Whatever the layout, labels are mapped by class NAME onto one canonical order, RAF-DB's own
(:data:`CLASS_NAMES`). ``flow_from_directory`` would have ordered classes alphabetically; we do
not, so that label 0 is Surprise everywhere.

Images are decoded to RGB (grayscale, palette, RGBA, CMYK and 16-bit inputs are converted the
way the legacy Keras loader converted them: ``PIL.Image.convert("RGB")``, which drops alpha),
resized with NEAREST to ``image_size`` (what ``flow_from_directory(target_size=...)`` did, so
RAF-DB's 100x100 crops are upsampled to 128x128), and kept as uint8. Decoded arrays are cached
on disk (:data:`fer_utils.paths.CACHE_DIR`), keyed by the source, its size and modification
times, and the image size, so the second load of full RAF-DB takes seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import DataError
from .progress import progress_bar

#: Canonical class order: RAF-DB's label ids 1..7.
CLASS_NAMES: tuple[str, ...] = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
RAF_ID_TO_NAME = {i + 1: name for i, name in enumerate(CLASS_NAMES)}

#: Folder names other tools use for the same classes (matched case-insensitively).
CLASS_ALIASES = {
    "surprise": "Surprise", "surprised": "Surprise",
    "fear": "Fear", "fearful": "Fear", "scared": "Fear",
    "disgust": "Disgust", "disgusted": "Disgust",
    "happiness": "Happiness", "happy": "Happiness", "joy": "Happiness",
    "sadness": "Sadness", "sad": "Sadness",
    "anger": "Anger", "angry": "Anger",
    "neutral": "Neutral",
}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
SPLITS = ("train", "test")
DEFAULT_IMAGE_SIZE = 128
CACHE_VERSION = 1
#: A data set whose root holds this file says it is synthetic (written by ``fer synth``).
SYNTHETIC_MARKER = "SYNTHETIC.md"

LAYOUT_HELP = (
    "expected one of: (1) official RAF-DB 'basic/EmoLabel/list_patition_label.txt' with "
    "'basic/Image/aligned/'; (2) 'DATASET/{train,test}/{1..7}/' with 'train_labels.csv' and "
    "'test_labels.csv'; (3) the report's 'class/{train,test}/<ClassName>/' (e.g. "
    "class/train/Happiness/). See the README section 'Where to put RAF-DB'"
)


def canonical_class(name: str) -> str | None:
    """Map a folder or label name onto :data:`CLASS_NAMES`, or None.

    >>> canonical_class("happy"), canonical_class("Neutral"), canonical_class("cat")
    ('Happiness', 'Neutral', None)
    """
    return CLASS_ALIASES.get(name.strip().lower())


# --------------------------------------------------------------------------------------------
# A source: a folder or a zip, seen as a list of posix paths and a way to read them.


class Source:
    """Read-only view of a folder or a zip file as relative posix paths."""

    def __init__(self, path):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise DataError(
                f"{self.path}: no such file or folder. Expected RAF-DB (or a synthetic set made by "
                f"'fer synth') as a folder or a .zip; fix the path, or run 'fer synth --out "
                f"data/synthetic' to make the embedded default"
            )
        self.is_zip = self.path.is_file()
        self._zip = None
        if self.is_zip:
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise DataError(
                    f"{self.path}: not a readable zip ({exc}). Expected a folder or a .zip holding "
                    f"RAF-DB; re-download or unpack it and pass the folder"
                ) from None
            self.files = sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        else:
            files = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                rel = Path(dirpath).relative_to(self.path).as_posix()
                for f in filenames:
                    if f.startswith("."):
                        continue
                    files.append(f if rel == "." else f"{rel}/{f}")
            self.files = sorted(files)
        self.files = [f for f in self.files if not ignored_path(f)]

    def read(self, rel: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(rel)
        return (self.path / rel).read_bytes()

    def display(self, rel: str) -> str:
        return f"{self.path}!{rel}" if self.is_zip else str(self.path / rel)

    def stamp(self) -> str:
        """Cheap identity of the source's content: sizes and mtimes of its files."""
        h = hashlib.sha1()
        h.update(str(self.path.resolve()).encode())
        if self.is_zip:
            st = self.path.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            for rel in self.files:
                st = (self.path / rel).stat()
                h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def close(self):
        if self._zip is not None:
            self._zip.close()


def ignored_path(rel: str) -> bool:
    """Hidden files and folders, macOS resource forks and Windows thumbnails are not data."""
    parts = rel.split("/")
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1] in ("Thumbs.db", "desktop.ini")


def _is_image(rel: str) -> bool:
    return rel.lower().endswith(IMAGE_SUFFIXES)


# --------------------------------------------------------------------------------------------
# Layout detection and scanning: a list of (split, file, class) entries, or a clear error.


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


def _parent(rel: str) -> str:
    p = str(PurePosixPath(rel).parent)
    return "" if p == "." else p + "/"


def detect(source: Source) -> Scan:
    """Find the layout in ``source`` and list its labelled images, or raise :class:`DataError`."""
    files = source.files
    label_files = [f for f in files if f.endswith("EmoLabel/list_patition_label.txt")]
    if label_files:
        return _scan_official(source, min(label_files, key=len))
    csvs = [f for f in files if PurePosixPath(f).name == "train_labels.csv"]
    if csvs:
        return _scan_csv(source, min(csvs, key=len))
    report = _find_report_base(files)
    if report is not None:
        return _scan_report(source, report)
    sample = ", ".join(files[:5]) or "nothing"
    raise DataError(
        f"{source.path}: no recognisable RAF-DB layout; {LAYOUT_HELP}. Found {len(files)} files "
        f"(first: {sample})"
    )


def _mark_synthetic(source: Source, scan: Scan) -> Scan:
    base = scan.base
    candidates = {base + SYNTHETIC_MARKER}
    parent = _parent(base.rstrip("/")) if base else ""
    candidates.add(parent + SYNTHETIC_MARKER)
    scan.synthetic = any(c in source.files for c in candidates)
    return scan


def _scan_official(source: Source, label_file: str) -> Scan:
    base = label_file[: -len("EmoLabel/list_patition_label.txt")]
    image_dir = base + "Image/aligned/"
    images = {f[len(image_dir):]: f for f in source.files if f.startswith(image_dir) and _is_image(f)}
    where = source.display(label_file)
    if not images:
        raise DataError(
            f"{source.display(image_dir)}: no aligned images. Expected the official layout's "
            f"'Image/aligned/train_00001_aligned.jpg' next to '{label_file}'; unpack "
            f"basic/Image/aligned.zip there"
        )
    entries, used = [], set()
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
        label = _raf_label(lab, f"{where}, line {lineno}")
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
        entries.append(Entry(split, images[found], label))
    unlabelled = sorted(set(images) - used)
    if unlabelled:
        raise DataError(
            f"{source.display(image_dir + unlabelled[0])}: image has no label in {where} "
            f"({len(unlabelled)} such images). Add a '<name>.jpg <1..7>' line for it or move it out"
        )
    _check_splits(source, entries, where)
    return _mark_synthetic(source, Scan("official", base, entries))


def _raf_label(raw: str, where: str) -> str:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value not in RAF_ID_TO_NAME:
        raise DataError(
            f"{where}: label {raw!r} is out of range; expected an integer 1..7 "
            f"(1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral). "
            f"Fix the label"
        )
    return RAF_ID_TO_NAME[value]


def _scan_csv(source: Source, train_csv: str) -> Scan:
    base = _parent(train_csv)
    entries: list[Entry] = []
    problems: list[str] = []
    for split in SPLITS:
        csv_rel = f"{base}{split}_labels.csv"
        if csv_rel not in source.files:
            raise DataError(
                f"{source.display(csv_rel)}: split '{split}' is missing. Expected "
                f"'{split}_labels.csv' (columns image,label) beside 'train_labels.csv'; restore it"
            )
        # Images of this split: any image under a '<split>/' folder below base.
        images: dict[str, list[str]] = {}
        for f in source.files:
            if f.startswith(base) and _is_image(f) and f"/{split}/" in "/" + f[len(base):]:
                images.setdefault(PurePosixPath(f).name, []).append(f)
        where = source.display(csv_rel)
        rows = list(csv.reader(io.StringIO(source.read(csv_rel).decode("utf-8-sig", errors="replace"))))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["image", "label"]:
            raise DataError(f"{where}: expected a header 'image,label', got {rows[0] if rows else 'an empty file'}; fix the header")
        used = set()
        for lineno, row in enumerate(rows[1:], 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise DataError(f"{where}, line {lineno}: expected 'image,label', got {row!r}")
            name, lab = row[0].strip(), row[1].strip()
            label = _raf_label(lab, f"{where}, line {lineno}")
            paths = images.get(name) or images.get(name.replace(".jpg", "_aligned.jpg"))
            if not paths:
                raise DataError(
                    f"{where}, line {lineno}: label entry {name!r} has no image under "
                    f"{source.display(base + 'DATASET/' + split)}/<label>/; restore the image or "
                    f"delete the row"
                )
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
    _check_splits(source, entries, source.display(base))
    return _mark_synthetic(source, Scan("csv", base, entries, problems))


def _find_report_base(files: list[str]) -> str | None:
    """The shallowest folder X with X/train/<Class>/image and X/test/... (or only X/train)."""
    bases = {}
    for f in files:
        parts = f.split("/")
        if len(parts) >= 4 and parts[-3] in SPLITS and canonical_class(parts[-2]) and _is_image(f):
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
                if _is_image(f):
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
    return _mark_synthetic(source, Scan("report", base, entries, problems))


def _check_splits(source: Source, entries: list[Entry], where: str) -> None:
    for split in SPLITS:
        if not any(e.split == split for e in entries):
            raise DataError(
                f"{where}: split '{split}' is missing (no {split} images listed). Expected both "
                f"train and test images; restore the {split} part of the data set"
            )


# --------------------------------------------------------------------------------------------
# Decoding


def decode_image(data: bytes, image_size: int | None = DEFAULT_IMAGE_SIZE, name: str = "<bytes>") -> np.ndarray:
    """Decode image bytes to an RGB uint8 array of shape (S, S, 3), resized with NEAREST.

    Any mode PIL reads (L, LA, P, RGBA, CMYK, I;16, ...) is converted with ``convert("RGB")``,
    as the legacy Keras loader did. ``image_size=None`` keeps the native size. Raises
    :class:`DataError` naming ``name`` when the bytes are not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise DataError(f"{name}: empty file (0 bytes); expected an image. Re-copy or remove it")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode == "I;16" or img.mode.startswith("I;16") or img.mode in ("I", "F"):
                arr = np.asarray(img, dtype=np.float64)
                hi = arr.max() or 1.0
                img = Image.fromarray((arr * (255.0 / (65535.0 if hi > 255 else 255.0))).clip(0, 255).astype(np.uint8))
            if img.mode != "RGB":
                img = img.convert("RGB")
            if image_size is not None and img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.NEAREST)
            return np.asarray(img, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"{name}: cannot decode image ({type(exc).__name__}: {exc}); expected a JPEG, PNG or "
            f"other image PIL reads. Re-copy the file or remove it (or pass on_error='skip')"
        ) from None


def _decode_many(source: Source, rels: list[str], image_size: int, on_error: str, progress: bool):
    out = np.zeros((len(rels), image_size, image_size, 3), dtype=np.uint8)
    ok = np.ones(len(rels), dtype=bool)
    failures: list[str] = []

    def work(i):
        try:
            data = source.read(rels[i]) if not source.is_zip else None
        except OSError as exc:
            return i, f"{source.display(rels[i])}: cannot read ({exc})"
        return i, data

    # Zip members are read in the main thread (ZipFile is not thread safe for reads); folder
    # reads and decodes overlap in threads (PIL releases the GIL while decoding).
    def decode(i, data):
        try:
            out[i] = decode_image(data, image_size, source.display(rels[i]))
            return None
        except DataError as exc:
            return str(exc)

    bar = progress_bar(len(rels), "decode", progress and len(rels) >= 500)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        futures = []
        for i in range(len(rels)):
            if source.is_zip:
                futures.append(pool.submit(decode, i, source.read(rels[i])))
            else:
                futures.append(pool.submit(lambda i=i: (lambda r: decode(*r) if isinstance(r[1], bytes) else r[1])(work(i))))
        for i, fut in enumerate(futures):
            err = fut.result()
            bar.update(1)
            if err:
                if on_error == "raise":
                    bar.close()
                    raise DataError(err)
                ok[i] = False
                failures.append(err)
    bar.close()
    return out, ok, failures


# --------------------------------------------------------------------------------------------
# The public loader


@dataclass
class Dataset:
    """Decoded images and labels of both splits, with where they came from.

    ``x_*`` are uint8 arrays (N, S, S, 3); ``y_*`` int64 class indices into ``class_names``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    names_train: list[str]
    names_test: list[str]
    class_names: tuple[str, ...]
    layout: str
    source: str
    image_size: int
    fingerprint: str
    synthetic: bool = False
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    from_cache: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            split: {c: int((y == i).sum()) for i, c in enumerate(self.class_names)}
            for split, y in (("train", self.y_train), ("test", self.y_test))
        }

    def describe(self) -> str:
        kind = "SYNTHETIC stand-in (not RAF-DB)" if self.synthetic else "real data"
        return (
            f"{self.source} [{self.layout} layout, {kind}]: {len(self.y_train)} train + "
            f"{len(self.y_test)} test at {self.image_size}x{self.image_size}, fingerprint "
            f"{self.fingerprint[:12]}"
        )


def load(
    path,
    image_size: int = DEFAULT_IMAGE_SIZE,
    *,
    cache: bool = True,
    on_error: str = "raise",
    progress: bool = True,
    verbose: bool = True,
) -> Dataset:
    """Load a data set in any of the three layouts, from a folder or a zip.

    Parameters
    ----------
    path : folder or .zip
    image_size : int
        Side of the square the images are resized to (NEAREST), 128 as in the report.
    cache : bool
        Reuse (and write) decoded arrays under :data:`fer_utils.paths.CACHE_DIR`.
    on_error : {"raise", "skip"}
        What to do with a file that cannot be decoded: fail naming it, or skip it and list it
        in ``Dataset.skipped`` (and say so). Never silently.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if int(image_size) < 8:
        raise DataError(f"image_size {image_size}: expected 8 or more pixels")
    t0 = time.perf_counter()
    source = Source(path)
    try:
        stamp = source.stamp()
        key = hashlib.sha1(f"v{CACHE_VERSION}:{stamp}:{image_size}:{on_error}".encode()).hexdigest()[:20]
        from . import paths

        cache_dir = Path(paths.CACHE_DIR) / key
        if cache and (cache_dir / "meta.json").exists():
            ds = _read_cache(cache_dir)
            if ds is not None:
                ds.load_seconds = time.perf_counter() - t0
                if verbose:
                    print(f"Loaded {ds.describe()} from cache in {ds.load_seconds:.1f}s")
                return ds
        scan = detect(source)
        if verbose:
            print(f"Found the {scan.layout} layout in {source.path}" + (f" (under {scan.base})" if scan.base else ""))
        arrays, names, skipped = {}, {}, []
        for split in SPLITS:
            ents = sorted((e for e in scan.entries if e.split == split), key=lambda e: (PurePosixPath(e.rel).name, e.rel))
            x, ok, failures = _decode_many(source, [e.rel for e in ents], image_size, on_error, progress)
            skipped += failures
            y = np.array([CLASS_NAMES.index(e.label) for e in ents], dtype=np.int64)
            arrays[split] = (x[ok], y[ok])
            names[split] = [e.rel for e, k in zip(ents, ok) if k]
        if skipped and verbose:
            print(f"Skipped {len(skipped)} undecodable files (on_error='skip'):")
            for s in skipped[:20]:
                print("  " + s)
        ds = Dataset(
            x_train=arrays["train"][0], y_train=arrays["train"][1],
            x_test=arrays["test"][0], y_test=arrays["test"][1],
            names_train=names["train"], names_test=names["test"],
            class_names=CLASS_NAMES, layout=scan.layout, source=str(source.path),
            image_size=int(image_size), fingerprint="", synthetic=scan.synthetic,
            problems=scan.problems, skipped=skipped,
        )
        ds.fingerprint = fingerprint(ds)
        if cache:
            _write_cache(cache_dir, ds)
        ds.load_seconds = time.perf_counter() - t0
        if verbose:
            print(f"Loaded {ds.describe()} in {ds.load_seconds:.1f}s")
        return ds
    finally:
        source.close()


def fingerprint(ds: Dataset) -> str:
    """Content hash of the decoded arrays and labels: equal data gives an equal fingerprint,
    whichever layout or container it came from."""
    h = hashlib.sha256()
    h.update(",".join(ds.class_names).encode())
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _write_cache(cache_dir: Path, ds: Dataset) -> None:
    tmp = cache_dir.with_name(cache_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.save(tmp / f"{name}.npy", getattr(ds, name))
    meta = {k: getattr(ds, k) for k in ("names_train", "names_test", "class_names", "layout", "source",
                                         "image_size", "fingerprint", "synthetic", "problems", "skipped")}
    meta["version"] = CACHE_VERSION
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        os.replace(tmp, cache_dir)
    except OSError:  # another process won the race; theirs is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(cache_dir: Path) -> Dataset | None:
    try:
        meta = json.loads((cache_dir / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION:
            return None
        arrays = {n: np.load(cache_dir / f"{n}.npy") for n in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError):
        return None
    meta.pop("version")
    meta["class_names"] = tuple(meta["class_names"])
    return Dataset(**arrays, **meta, from_cache=True)


# --------------------------------------------------------------------------------------------
# info: what `fer data info` prints


def info(path, *, read_sizes: bool = True) -> dict:
    """Describe a data set without decoding it: layout, counts per split and class, sizes."""
    source = Source(path)
    try:
        scan = detect(source)
        counts = {s: {c: 0 for c in CLASS_NAMES} for s in SPLITS}
        for e in scan.entries:
            counts[e.split][e.label] += 1
        sizes: dict[str, int] = {}
        modes: dict[str, int] = {}
        problems = list(scan.problems)
        if read_sizes:
            from PIL import Image

            for e in scan.entries:
                try:
                    with Image.open(io.BytesIO(source.read(e.rel))) as img:
                        key = f"{img.size[0]}x{img.size[1]}"
                        sizes[key] = sizes.get(key, 0) + 1
                        modes[img.mode] = modes.get(img.mode, 0) + 1
                except Exception as exc:  # noqa: BLE001 - reported, not raised
                    problems.append(f"{source.display(e.rel)}: cannot read image header ({type(exc).__name__})")
        return {
            "path": str(source.path),
            "layout": scan.layout,
            "base": scan.base,
            "synthetic": scan.synthetic,
            "class_names": list(CLASS_NAMES),
            "counts": counts,
            "totals": {s: sum(counts[s].values()) for s in SPLITS},
            "image_sizes": sizes,
            "image_modes": modes,
            "problems": problems,
        }
    finally:
        source.close()


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class, at least one, chosen by ``seed``.

    >>> keep, val = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.25, seed=0)
    >>> sorted(np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])[val]).tolist())
    [1, 2]
    """
    rng = np.random.default_rng([int(seed), 0x5A11])
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = int(round(len(idx) * fraction))
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        held.append(rng.permutation(idx)[:n])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), held_out)
    return keep, held_out
