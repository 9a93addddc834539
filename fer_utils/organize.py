"""Sort unlabelled faces into one folder per predicted emotion (the report's last step, Figure 13).

The report's ``organize_images`` walked a folder, predicted one image at a time with
``model.predict`` and ``shutil.copy``-ed each file to ``<out>/<Emotion>/<file name>``. As
printed it cannot run (``image.fromarray`` on an ndarray, ``resize_image`` used before it is
assigned), and once fixed it still has three problems this module removes:

* speed: one ``model.predict`` call per image costs tens of milliseconds of Keras overhead
  each; here decoding runs in a thread pool while the model predicts whole batches;
* collisions: copying by base name lets ``a/x.jpg`` silently overwrite ``b/x.jpg``; here the
  path inside the input is kept (``<out>/<Emotion>/a/x.jpg``) and an existing different file
  is never overwritten (the copy becomes ``x (2).jpg`` and ``predictions.csv`` says so);
* fragility: one unreadable file stopped the run; here it goes to ``errors.csv`` and the run
  goes on, and an interrupted run resumes where it stopped.

Output layout::

    OUTPUT/<Emotion>/<path inside INPUT>             the copies (bytes unchanged)
    OUTPUT/_uncertain/<Emotion>/<path inside INPUT>  confidence below ``min_confidence``
    OUTPUT/predictions.csv   source, destination, predicted, confidence, one column per class
    OUTPUT/errors.csv        source, reason (files that could not be read or decoded)
    OUTPUT/.organize-journal.csv  per-batch journal (what resuming reads)
    OUTPUT/.organize-state.json   model and settings the journal belongs to

Images are decoded exactly as for training (:func:`fer_utils.datasets.decode_image`: RGB,
NEAREST resize to the model's input size), not with the report's ``cv2.imread`` (BGR) and
PIL's default (bicubic) resize, so the model sees faces the way it was trained on them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from .datasets import CLASS_NAMES, IMAGE_SUFFIXES, decode_image, ignored_path
from .progress import progress_bar
from .errors import ConfigError, DataError, FerError

PREDICTIONS_CSV = "predictions.csv"
ERRORS_CSV = "errors.csv"
JOURNAL = ".organize-journal.csv"
STATE = ".organize-state.json"
UNCERTAIN_DIR = "_uncertain"
#: Probabilities are written with this many decimals; the journal keeps them as text, so a
#: resumed or repeated run rebuilds ``predictions.csv`` byte for byte.
DECIMALS = 6
STATE_VERSION = 1


# --------------------------------------------------------------------------------------------
# The input: a folder or a zip, seen as sorted relative posix paths.


class _Input:
    """Read-only view of INPUT. Zip members are read in the calling thread only (ZipFile
    reads are not thread safe); folder files may be read from worker threads."""

    def __init__(self, path: Path, exclude: Path | None = None):
        self.path = path
        self.problems: list[tuple[str, str]] = []  # (source, reason) for unreadable folders
        self.skipped = 0  # files without an image suffix
        self._zip = None
        if path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path}: not a readable zip ({exc}); expected a folder of faces or a .zip of one") from None
            names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        else:
            names = []
            excl = exclude.resolve() if exclude is not None else None

            def onerror(exc):
                rel = Path(exc.filename).relative_to(path).as_posix() if exc.filename else "?"
                self.problems.append((rel + "/", f"cannot list folder ({exc.strerror or exc})"))

            for dirpath, dirnames, filenames in os.walk(path, onerror=onerror):
                d = Path(dirpath)
                dirnames[:] = sorted(x for x in dirnames if not x.startswith(".") and (excl is None or (d / x).resolve() != excl))
                rel = d.relative_to(path).as_posix()
                names += [f if rel == "." else f"{rel}/{f}" for f in filenames]
        names = sorted(n for n in names if not ignored_path(n))
        self.files = [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
        self.skipped = len(names) - len(self.files)

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def read(self, rel: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(rel)
        return (self.path / rel).read_bytes()

    def stamp(self, rel: str) -> str:
        """Size and modification time: a changed file is sorted again."""
        if self._zip is not None:
            info = self._zip.getinfo(rel)
            return f"{info.file_size}:{'-'.join(map(str, info.date_time))}"
        st = (self.path / rel).stat()
        return f"{st.st_size}:{st.st_mtime_ns}"

    def close(self):
        if self._zip is not None:
            self._zip.close()


# --------------------------------------------------------------------------------------------
# The model


def _resolve_model(model, class_names):
    if isinstance(model, (str, os.PathLike)):
        from .model import load_model

        model, loaded = load_model(model, compile=False)
        class_names = class_names or loaded
    class_names = tuple(class_names or getattr(model, "class_names", None) or ())
    n_out = int(model.output_shape[-1])
    if not class_names:
        if n_out != len(CLASS_NAMES):
            raise ConfigError(f"the model has {n_out} outputs and no class names; pass class_names=[...] with {n_out} names")
        class_names = CLASS_NAMES
    if len(class_names) != n_out:
        raise ConfigError(f"class_names has {len(class_names)} names but the model has {n_out} outputs; pass one name per output")
    for name in class_names:
        if not name or "/" in name or "\\" in name or name.startswith(".") or name == UNCERTAIN_DIR:
            raise ConfigError(f"class name {name!r} cannot be a folder name; rename it (no slashes, no leading dot, not {UNCERTAIN_DIR!r})")
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    h, w = shape[1], shape[2]
    if h is None and w is None:
        size = 128
    elif h != w:
        raise ConfigError(f"model input {h}x{w}: expected a square input such as 128x128")
    else:
        size = int(h)
    return model, class_names, size


def _model_fingerprint(model, class_names, size) -> str:
    h = hashlib.sha1(f"{size}|{'|'.join(class_names)}".encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Optional face detection (OpenCV's Haar cascade, as shipped in the opencv wheels)

_cascades = threading.local()


def _cascade():
    try:
        import cv2
    except ImportError:
        raise FerError(
            "detect_faces=True needs OpenCV, which is not installed. Install it with "
            "'pip install opencv-python-headless<5' (or the package's 'faces' extra), or run without face detection"
        ) from None
    c = getattr(_cascades, "c", None)
    if c is None:  # one classifier per thread: detectMultiScale is not documented thread safe
        xml = os.path.join(getattr(getattr(cv2, "data", None), "haarcascades", ""), "haarcascade_frontalface_default.xml")
        c = cv2.CascadeClassifier(xml)
        if c.empty():
            raise FerError(
                f"{xml}: OpenCV's Haar cascade is missing (OpenCV {cv2.__version__}; the 5.x wheels no longer "
                f"ship cv2.data). Install 'opencv-python-headless<5', or run without face detection"
            )
        _cascades.c = c
    return cv2, c


def largest_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest frontal face Haar finds in an RGB uint8 image, or None."""
    cv2, cascade = _cascade()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    side = min(gray.shape[:2])
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(max(20, side // 5),) * 2)
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
    return x, y, w, h


def _decode(data: bytes, size: int, name: str, detect_faces: bool) -> np.ndarray:
    if not detect_faces:
        return decode_image(data, size, name)
    from PIL import Image

    full = decode_image(data, None, name)
    box = largest_face(full)
    if box is not None:  # no face found: keep the whole image (UTKFace crops often are the face)
        x, y, w, h = box
        full = full[y : y + h, x : x + w]
    return np.asarray(Image.fromarray(full).resize((size, size), Image.NEAREST), dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# Journal and state


def _columns(class_names):
    return ["source", "destination", "predicted", "confidence", *[f"p_{c}" for c in class_names]]


def _read_journal(path: Path, class_names) -> dict[str, tuple[str, list[str]]]:
    """source -> (stamp, prediction row). A torn last line (interrupted write) is dropped."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(text)))
    want = ["stamp", *_columns(class_names)]
    if not rows or rows[0] != want:
        raise FerError(f"{path}: unexpected header; expected {','.join(want)}. Delete it to sort again from scratch")
    done = {}
    for row in rows[1:]:
        if len(row) == len(want):
            done[row[1]] = (row[0], row[1:])  # a later row for the same source wins
    return done


def _check_state(output: Path, state: dict) -> None:
    path = output / STATE
    if path.exists():
        old = json.loads(path.read_text())
        diff = sorted(k for k in state if old.get(k) != state[k])
        if diff:
            raise FerError(
                f"{output}: already organized with different {', '.join(diff)} "
                f"(was {', '.join(f'{k}={old.get(k)!r}' for k in diff)}). Sorting into it again would mix two "
                f"runs; pass a new output folder, or delete {output} to start over"
            )
    else:
        atomic_write_json(path, state)


# --------------------------------------------------------------------------------------------
# Copies


def _remove_stale_temps(output: Path) -> None:
    """Delete temporary copies a killed run left behind (``.<name>.<pid>.tmp``, ours only)."""
    for dirpath, _, filenames in os.walk(output):
        for f in filenames:
            if f.startswith(".") and f.endswith(".tmp") and f[:-4].rsplit(".", 1)[-1].isdigit():
                try:
                    os.unlink(os.path.join(dirpath, f))
                except OSError:
                    pass


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _pick_destination(output: Path, rel_dest: str, data: bytes, taken: set[str]) -> tuple[str, bool]:
    """A destination for ``data`` that never overwrites a different file: ``rel_dest`` itself,
    else ``name (2).ext``, ``name (3).ext``... Returns (destination, already there)."""
    p = PurePosixPath(rel_dest)
    suffixes = "".join(p.suffixes[-1:])
    stem = p.name[: len(p.name) - len(suffixes)] if suffixes else p.name
    k = 1
    while True:
        cand = rel_dest if k == 1 else str(p.with_name(f"{stem} ({k}){suffixes}"))
        k += 1
        if cand in taken:
            continue
        target = output / cand
        if not target.exists():
            return cand, False
        if _same_bytes(target, data):
            return cand, True


def _atomic_copy(data: bytes, target: Path, mtime_ns: int | None) -> None:
    """Temp file + os.replace: an interrupted copy never leaves a half file under its name.
    No fsync per image (the journal is fsynced per batch, and resuming checks the size)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


# --------------------------------------------------------------------------------------------
# The summary


@dataclass
class Summary:
    """What :func:`organize` did. ``str(summary)`` is one line for people."""

    output: Path
    sorted: int = 0  # images in OUTPUT now (this run and earlier runs)
    failed: int = 0  # files in errors.csv
    uncertain: int = 0  # of ``sorted``, those under _uncertain/
    resumed: int = 0  # taken from the journal, not predicted again
    renamed: int = 0  # copies that got a "name (k).ext" because a different file was there
    skipped_non_images: int = 0  # files without an image suffix (not inputs)
    per_class: dict[str, int] = field(default_factory=dict)
    uncertain_per_class: dict[str, int] = field(default_factory=dict)

    @property
    def predictions_csv(self) -> Path:
        return self.output / PREDICTIONS_CSV

    @property
    def errors_csv(self) -> Path:
        return self.output / ERRORS_CSV

    def __str__(self) -> str:
        s = f"{self.sorted} sorted, {self.failed} failed, {self.uncertain} uncertain"
        if self.resumed:
            s += f" ({self.resumed} from an earlier run)"
        classes = ", ".join(f"{k} {v}" for k, v in self.per_class.items())
        return f"{s}; {classes}" if classes else s


# --------------------------------------------------------------------------------------------
# The main function


def organize(
    input,
    output,
    model,
    class_names=None,
    *,
    batch_size: int = 256,
    min_confidence: float | None = None,
    detect_faces: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> Summary:
    """Copy every image under ``input`` (a folder or a .zip) to ``output/<Emotion>/<path>``.

    Parameters
    ----------
    input : path
        Folder (walked recursively) or .zip. Files with an image suffix
        (:data:`~fer_utils.datasets.IMAGE_SUFFIXES`) are inputs; hidden files are ignored.
        Never modified.
    output : path
        Created if needed. Sorting into it again resumes (or, when finished, changes nothing).
    model : keras.Model or path to a .keras file
        Takes uint8 images of its ``input_shape``; softmax over the classes.
    class_names : sequence of str, optional
        One per model output; default: the names saved with the model, else RAF-DB's.
    batch_size : int
        Images per ``predict_on_batch`` call.
    min_confidence : float, optional
        Faces whose top probability is below it go to ``output/_uncertain/<Emotion>/``.
    detect_faces : bool
        Crop the largest Haar-cascade face first (needs OpenCV); the whole image when none.
    progress : bool
        A tqdm bar over images.

    Returns
    -------
    Summary
        Counts; ``str(summary)`` reads "N sorted, M failed, K uncertain; <class> <n>, ...".
    """
    input, output = Path(input).expanduser(), Path(output).expanduser()
    if not input.exists():
        raise DataError(f"{input}: no such file or folder; expected a folder of face images or a .zip of one")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r}: expected a positive integer such as 256")
    if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
        raise ConfigError(f"min_confidence {min_confidence!r}: expected a probability in [0, 1], e.g. 0.5")
    min_confidence = float(min_confidence) if min_confidence else None
    if output.resolve() == input.resolve() or input.resolve().is_relative_to(output.resolve()):
        raise ConfigError(f"output {output} holds the input {input}; pass an output folder outside the input")
    if detect_faces:
        _cascade()  # fail now, not in a worker thread

    model, class_names, size = _resolve_model(model, class_names)
    src = _Input(input, exclude=output if not input.is_file() else None)
    output.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(output)
    _check_state(output, {
        "version": STATE_VERSION,
        "input": str(input.resolve()),
        "model": _model_fingerprint(model, class_names, size),
        "class_names": list(class_names),
        "min_confidence": min_confidence,
        "detect_faces": bool(detect_faces),
    })

    journal_path = output / JOURNAL
    done = _read_journal(journal_path, class_names)
    stamps = {}
    todo, errors = [], list(src.problems)
    for rel in src.files:
        try:
            stamps[rel] = src.stamp(rel)
        except OSError as exc:
            errors.append((rel, f"cannot read ({exc.strerror or exc})"))
            continue
        prev = done.get(rel)
        if prev and prev[0] == stamps[rel] and _copy_intact(output / prev[1][1], prev[0]):
            continue
        done.pop(rel, None)
        todo.append(rel)
    taken = {row[1] for _, row in done.values()}
    resumed = len(src.files) - len(todo) - (len(errors) - len(src.problems))

    if not journal_path.exists():
        atomic_write_text(journal_path, ",".join(["stamp", *_columns(class_names)]) + "\n")

    bar = progress_bar(len(src.files), "organize", progress, initial=resumed, mininterval=0.5)
    workers = workers or max(2, min(8, (os.cpu_count() or 1) * 2))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool, open(journal_path, "a", encoding="utf-8", newline="") as journal:
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            pending = _submit(pool, src, batches[0], size, detect_faces) if batches else None
            for b in range(len(batches)):
                results = [f.result() for f in pending]
                # decode the next batch while the model predicts this one (predict releases the GIL)
                pending = _submit(pool, src, batches[b + 1], size, detect_faces) if b + 1 < len(batches) else None
                ok = [r for r in results if r[2] is not None]
                errors += [(r[0], r[3]) for r in results if r[2] is None]
                bar.update(len(results) - len(ok))
                if not ok:
                    continue
                x = np.stack([r[2] for r in ok])
                if len(batches) > 1 and len(x) < batch_size:
                    # pad a short batch to the traced shape: a new shape costs a retrace of the
                    # predict graph, which is slower than predicting a few blank images
                    x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
                probs = np.asarray(model.predict_on_batch(x), dtype=np.float64)[: len(ok)]
                lines, copies = [], []
                for (rel, data, _, _, mtime_ns), p in zip(ok, probs):
                    k = int(np.argmax(p))
                    conf = float(p[k])
                    folder = class_names[k] if min_confidence is None or conf >= min_confidence else f"{UNCERTAIN_DIR}/{class_names[k]}"
                    want = f"{folder}/{rel}"
                    dest, there = _pick_destination(output, want, data, taken)
                    taken.add(dest)
                    if not there:
                        copies.append(pool.submit(_atomic_copy, data, output / dest, mtime_ns))
                    row = [rel, dest, class_names[k], f"{conf:.{DECIMALS}f}", *[f"{v:.{DECIMALS}f}" for v in p]]
                    done[rel] = (stamps[rel], row)
                    lines.append([stamps[rel], *row])
                for c in copies:
                    c.result()
                # journal only after the copies exist: a journalled row is a finished image
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows(lines)
                journal.write(buf.getvalue())
                journal.flush()
                os.fsync(journal.fileno())
                bar.update(len(ok))
    finally:
        bar.close()
        src.close()

    rows = [done[rel][1] for rel in sorted(done)]
    _write_csv(output / PREDICTIONS_CSV, _columns(class_names), rows)
    _write_csv(output / ERRORS_CSV, ["source", "reason"], sorted(errors))

    uncertain = [r for r in rows if r[1].startswith(UNCERTAIN_DIR + "/")]
    per = Counter(r[2] for r in rows)
    unc = Counter(r[2] for r in uncertain)
    return Summary(
        output=output,
        sorted=len(rows),
        failed=len(errors),
        uncertain=len(uncertain),
        resumed=resumed,
        renamed=sum(1 for r in rows if _was_renamed(r)),
        skipped_non_images=src.skipped,
        per_class={c: per[c] for c in class_names},
        uncertain_per_class={c: unc[c] for c in class_names if unc[c]},
    )


def _was_renamed(row) -> bool:
    source, dest = row[0], row[1]
    tail = dest.split("/", 2 if dest.startswith(UNCERTAIN_DIR + "/") else 1)[-1]
    return tail != source


def _copy_intact(path: Path, stamp: str) -> bool:
    try:
        return path.stat().st_size == int(stamp.split(":", 1)[0])
    except (OSError, ValueError):
        return False


def _submit(pool, src: _Input, rels, size, detect_faces):
    def work(rel, data):
        mtime_ns = None
        try:
            if data is None:
                data = src.read(rel)
                mtime_ns = (src.path / rel).stat().st_mtime_ns
        except OSError as exc:
            return rel, None, None, f"cannot read ({exc.strerror or exc})", None
        try:
            return rel, data, _decode(data, size, rel, detect_faces), None, mtime_ns
        except DataError as exc:
            return rel, data, None, str(exc).split(": ", 1)[-1], None
        except Exception as exc:  # noqa: BLE001 - e.g. a decompression bomb; one bad file must not stop the run
            return rel, data, None, f"cannot decode image ({type(exc).__name__}: {exc})", None

    futures = []
    for rel in rels:
        data = None
        if src.is_zip:  # zip members are read here, in one thread
            try:
                data = src.read(rel)
            except Exception as exc:  # noqa: BLE001 - bad CRC, encrypted member, ...
                futures.append(pool.submit(lambda rel=rel, e=exc: (rel, None, None, f"cannot read from zip ({type(e).__name__}: {e})", None)))
                continue
        futures.append(pool.submit(work, rel, data))
    return futures


def _write_csv(path: Path, header, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    if not _same_bytes(path, data):  # a repeated run leaves even the modification time alone
        atomic_write_bytes(path, data)


# --------------------------------------------------------------------------------------------
# Reading the results back


def read_predictions(output):
    """``OUTPUT/predictions.csv`` as a DataFrame (probabilities as floats)."""
    import pandas as pd

    path = Path(output) / PREDICTIONS_CSV
    if not path.exists():
        raise FerError(f"{path}: no predictions; run organize(input, {output}, model) first")
    return pd.read_csv(path, keep_default_na=False)


def contact_sheets(output, figures_dir=None, per_sheet: int = 16, *, thumb: int = 96, prefix: str = "organize_") -> list[Path]:
    """One PNG per class: the ``per_sheet`` most confident faces above the ``per_sheet`` least
    confident ones, each labelled with its confidence. Saved atomically as
    ``figures_dir/organize_<Class>.png`` (default :data:`fer_utils.paths.FIGURES_DIR`).

    Thumbnails are read from the copies in ``output``. Returns the paths written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from . import paths

    output = Path(output)
    figures_dir = Path(figures_dir) if figures_dir is not None else paths.FIGURES_DIR
    df = read_predictions(output)
    cols = min(8, max(1, per_sheet))
    written = []
    for cls, group in df.groupby("predicted", sort=True):
        group = group.sort_values(["confidence", "source"], ascending=[False, True])
        top = group.head(per_sheet)
        bottom = group.iloc[::-1].head(per_sheet)  # least confident first
        blocks = [("most confident", top), ("least confident", bottom)]
        rows_per = [max(1, -(-len(b) // cols)) for _, b in blocks]
        fig = Figure(figsize=(cols * 1.25, sum(rows_per) * 1.5 + 0.8), dpi=100)
        FigureCanvasAgg(fig)
        sub = fig.subfigures(2, 1, height_ratios=[n + 0.5 for n in rows_per])
        for sf, (title, block), nrows in zip(sub, blocks, rows_per):
            sf.suptitle(f"{cls} ({len(group)} faces): {title}", fontsize=10)
            axes = np.atleast_1d(sf.subplots(nrows, cols)).ravel()
            sf.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.45 / (nrows * 1.5 + 0.45), hspace=0.3, wspace=0.08)
            for ax in axes:
                ax.axis("off")
            for ax, (_, r) in zip(axes, block.iterrows()):
                try:
                    with Image.open(output / r["destination"]) as im:
                        ax.imshow(np.asarray(im.convert("RGB").resize((thumb, thumb))))
                except OSError:
                    continue
                ax.set_title(f"{r['confidence']:.2f}", fontsize=8, pad=2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        path = figures_dir / f"{prefix}{cls}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# UTKFace file names and confidence by age


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


def latest_model(runs_dir=None) -> Path:
    """The newest ``model*.keras`` under the run store (``results/runs/*/``), for notebooks
    that were given no model. Raises FerError saying what to do when there is none."""
    from . import paths

    runs_dir = Path(runs_dir) if runs_dir is not None else Path(paths.RUNS_DIR)
    found = sorted(runs_dir.glob("*/model*.keras"), key=lambda p: (p.stat().st_mtime_ns, str(p)))
    if not found:
        raise FerError(
            f"{runs_dir}: no trained model (expected results/runs/<run>/model*.keras). Run the "
            f"experiments first ('make report', or notebooks 01-04), or pass model_path=path/to/model.keras"
        )
    return found[-1]
