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

Every input file (zip members included) ends as exactly one copy or one ``errors.csv`` row:
files without an image suffix and paths a zip holds twice are rows too. An input that changed
since the last run replaces its own earlier copy; nothing else in OUTPUT is ever overwritten or
deleted. A second run over the same input leaves OUTPUT byte for byte as it was.

Output layout::

    OUTPUT/<Emotion>/<path inside INPUT>             the copies (bytes unchanged)
    OUTPUT/_uncertain/<Emotion>/<path inside INPUT>  confidence below ``min_confidence``
    OUTPUT/predictions.csv   source, destination, predicted, confidence, one column per class
    OUTPUT/errors.csv        source, reason (files that are not images, or could not be read or decoded)
    OUTPUT/_sheets/<Emotion>.png  contact sheets (:func:`fer_utils.study.figures.organize_contact_sheets`)
    OUTPUT/.organize-journal.csv  per-batch journal (what resuming reads)
    OUTPUT/.organize-state.json   model and settings the journal belongs to

Images are decoded exactly as for training (:func:`fer_utils.data.datasets.decode_image`: RGB,
NEAREST resize to the model's input size; luminance for a model with one input channel), not with the report's ``cv2.imread`` (BGR) and
PIL's default (bicubic) resize, so the model sees faces the way it was trained on them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from fer_utils.atomic import atomic_write_text
from fer_utils.data.datasets import CLASS_NAMES
from fer_utils.errors import ConfigError, DataError, FerError
from fer_utils.apply.organize_io import (  # noqa: F401 - the file names are part of organize's interface too
    ERRORS_CSV,
    JOURNAL,
    PREDICTIONS_CSV,
    SHEETS_DIR,
    STATE,
    UNCERTAIN_DIR,
    atomic_copy,
    check_state,
    columns,
    copy_intact,
    drop_own_copy,
    pick_destination,
    read_journal,
    remove_stale_temps,
    was_renamed,
    write_csv,
)
from fer_utils.apply.faces import detector, submit_decodes
from fer_utils.progress import progress_bar
from fer_utils.data.sources import IMAGE_SUFFIXES, Source, check_output_folder, is_image, write_error

#: Probabilities are written with this many decimals; the journal keeps them as text, so a
#: resumed or repeated run rebuilds ``predictions.csv`` byte for byte.
DECIMALS = 6
STATE_VERSION = 1


# --------------------------------------------------------------------------------------------
# The model


def _resolve_model(model, class_names):
    if isinstance(model, (str, os.PathLike)):
        from fer_utils.models.registry import load_model

        try:
            model, loaded = load_model(model, compile=False)
        except (ValueError, KeyError, TypeError) as exc:  # a damaged <model>.classes.json beside it
            side = f"{model}.classes.json"
            raise FerError(
                f"{side}: cannot read the class names ({type(exc).__name__}); expected JSON like "
                f'{{"class_names": ["Surprise", ...]}} as saved by \'fer train --save\'. Restore it, or delete it '
                f"to use RAF-DB's 7 names"
            ) from None
        class_names = class_names or loaded
    class_names = tuple(class_names or getattr(model, "class_names", None) or ())
    n_out = int(model.output_shape[-1])
    if not class_names:
        if n_out != len(CLASS_NAMES):
            raise ConfigError(
                f"the model has {n_out} outputs and no class names; expected a model with one output per emotion "
                f"(7), saved by 'fer train --save' (which writes the names beside it)"
            )
        class_names = CLASS_NAMES
    if len(class_names) != n_out:
        raise ConfigError(
            f"the model has {n_out} outputs but {len(class_names)} class names ({', '.join(class_names)}); expected "
            f"one name per output. Use a model saved by 'fer train --save', or fix its .classes.json"
        )
    for name in class_names:
        if not name or "/" in name or "\\" in name or name.startswith((".", "_")):
            raise ConfigError(f"class name {name!r} cannot be a folder name; rename it (no slashes, no leading dot or underscore)")
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
    channels = shape[-1] if len(shape) == 4 else 3
    if channels not in (1, 3):
        raise ConfigError(f"model input has {channels} channels: expected 3 (RGB) or 1 (grayscale; faces are converted)")
    return model, class_names, size, int(channels)


def _model_fingerprint(model, class_names, size) -> str:
    h = hashlib.sha1(f"{size}|{'|'.join(class_names)}".encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# The summary


@dataclass
class Summary:
    """What :func:`organize` did. ``str(summary)`` is one line for people."""

    output: Path
    sorted: int = 0  # images in OUTPUT now (this run and earlier runs)
    failed: int = 0  # rows of errors.csv for files that could not be read or decoded
    uncertain: int = 0  # of ``sorted``, those under _uncertain/
    resumed: int = 0  # taken from the journal, not predicted again
    renamed: int = 0  # copies that got a "name (k).ext" because a different file was there
    skipped_non_images: int = 0  # rows of errors.csv for files without an image suffix
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
        if self.skipped_non_images:
            s += f", {self.skipped_non_images} not images (see errors.csv)"
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
        (:data:`~fer_utils.data.datasets.IMAGE_SUFFIXES`) are inputs; hidden files are ignored.
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
    check_output_folder(output, "OUTPUT")  # a file, read-only, full: say so before any work
    src = Source(input, exclude=output if input.is_dir() else None, what="a folder of face images")
    try:
        inputs, errors = _inputs(src, input)
        if detect_faces:
            detector()  # fail now, not in a worker thread
        model, class_names, size, channels = _resolve_model(model, class_names)
        try:
            return _sort(src, inputs, errors, output, model, class_names, size, channels,
                         batch_size=batch_size, min_confidence=min_confidence, detect_faces=detect_faces,
                         progress=progress, workers=workers)
        except OSError as exc:  # full disk, read-only file system, quota: the journal keeps what is done
            raise write_error(output, exc, "The faces sorted so far are kept: free space (or fix permissions) "
                                           "and run the same command again to resume") from None
    finally:
        src.close()


def _inputs(src: Source, input: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The images to sort, and an errors.csv row for every other file (one row per path)."""
    errors = list(src.problems)
    for rel, k in sorted(src.duplicates.items()):
        errors.append((rel, f"the zip holds {k} entries with this path; which one is meant is ambiguous, so none "
                            f"is sorted. Rename or remove the extra entries and run again"))
    for rel in src.files:
        if is_image(rel) or rel in src.duplicates:
            continue
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix == ".zip":
            why = "a zip inside the input is not opened; unpack it into the input to sort its faces"
        else:
            why = (f"not an image file (suffix {suffix or 'none'}); only {', '.join(IMAGE_SUFFIXES)} files are "
                   f"sorted. Rename it if it is an image")
        errors.append((rel, why))
    inputs = [rel for rel in src.images if rel not in src.duplicates]
    if not inputs:
        found = f"{len(src.files)} other files (first: {', '.join(src.files[:3])})" if src.files else "nothing"
        hint = "; a zip of zips is not opened: unpack the inner zips" if any(f.lower().endswith(".zip") for f in src.files) else ""
        raise DataError(
            f"INPUT {input}: no image files to sort (found {found}){hint}. Expected faces with a suffix of "
            f"{', '.join(IMAGE_SUFFIXES)}, in a folder or a .zip"
        )
    return inputs, errors


def _sort(src, inputs, errors, output, model, class_names, size, channels, *, batch_size, min_confidence,
          detect_faces, progress, workers) -> Summary:
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(output)
    check_state(output, {
        "version": STATE_VERSION,
        "input": str(src.path.resolve()),
        "model": _model_fingerprint(model, class_names, size),
        "class_names": list(class_names),
        "min_confidence": min_confidence,
        "detect_faces": bool(detect_faces),
    })
    n_listed = len(errors)
    journal_path = output / JOURNAL
    done = read_journal(journal_path, class_names)
    stamps, own = {}, {}  # own: rel -> (destination, stamp) of its copy from an earlier run
    todo = []
    for rel in inputs:
        try:
            stamps[rel] = src.stamp(rel)
        except OSError as exc:  # a symlink to itself, a broken link
            errors.append((rel, f"cannot read ({exc.strerror or exc})"))
            continue
        prev = done.get(rel)
        if prev and prev[0] == stamps[rel] and copy_intact(output / prev[1][1], prev[0]):
            continue
        if prev:  # changed since the last run (or its copy is gone): it replaces its own copy
            own[rel] = (prev[1][1], prev[0])
        done.pop(rel, None)
        todo.append(rel)
    taken = {row[1] for _, row in done.values()}
    resumed = len(inputs) - len(todo) - (len(errors) - n_listed)

    if not journal_path.exists():
        atomic_write_text(journal_path, ",".join(["stamp", *columns(class_names)]) + "\n")

    bar = progress_bar(len(inputs), "organize", progress, initial=resumed, mininterval=0.5)
    workers = workers or max(2, min(8, (os.cpu_count() or 1) * 2))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool, open(journal_path, "a", encoding="utf-8", newline="") as journal:
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            decode = (size, detect_faces, channels)
            pending = submit_decodes(pool, src, batches[0], *decode) if batches else None
            for b in range(len(batches)):
                results = [f.result() for f in pending]
                # decode the next batch while the model predicts this one (predict releases the GIL)
                pending = submit_decodes(pool, src, batches[b + 1], *decode) if b + 1 < len(batches) else None
                ok = [r for r in results if r[2] is not None]
                for r in results:
                    if r[2] is None:
                        errors.append((r[0], r[3]))
                        drop_own_copy(output, own.pop(r[0], None), None)
                bar.update(len(results) - len(ok))
                if not ok:
                    continue
                x = np.stack([r[2] for r in ok])
                if len(batches) > 1 and len(x) < batch_size:
                    # pad a short batch to the traced shape: a new shape costs a retrace of the
                    # predict graph, which is slower than predicting a few blank images
                    x = np.concatenate([x, np.zeros((batch_size - len(x), *x.shape[1:]), x.dtype)])
                probs = np.asarray(model.predict_on_batch(x), dtype=np.float64)[: len(ok)]
                lines, copies, replaced = [], [], []
                for (rel, data, _, _, mtime_ns), p in zip(ok, probs):
                    k = int(np.argmax(p))
                    conf = float(p[k])
                    folder = class_names[k] if min_confidence is None or conf >= min_confidence else f"{UNCERTAIN_DIR}/{class_names[k]}"
                    mine = own.pop(rel, None)
                    dest, there = pick_destination(output, f"{folder}/{rel}", data, taken, mine[0] if mine else None)
                    taken.add(dest)
                    if not there:
                        copies.append(pool.submit(atomic_copy, data, output / dest, mtime_ns))
                    replaced.append((mine, dest))
                    row = [rel, dest, class_names[k], f"{conf:.{DECIMALS}f}", *[f"{v:.{DECIMALS}f}" for v in p]]
                    done[rel] = (stamps[rel], row)
                    lines.append([stamps[rel], *row])
                for c in copies:
                    c.result()
                for mine, dest in replaced:
                    drop_own_copy(output, mine, dest)
                # journal only after the copies exist: a journalled row is a finished image
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows(lines)
                journal.write(buf.getvalue())
                journal.flush()
                os.fsync(journal.fileno())
                bar.update(len(ok))
    finally:
        bar.close()

    rows = [done[rel][1] for rel in sorted(done)]
    write_csv(output / PREDICTIONS_CSV, columns(class_names), rows)
    write_csv(output / ERRORS_CSV, ["source", "reason"], sorted(errors))

    uncertain = [r for r in rows if r[1].startswith(UNCERTAIN_DIR + "/")]
    per = Counter(r[2] for r in rows)
    unc = Counter(r[2] for r in uncertain)
    non_images = sum(1 for _, why in errors if why.startswith(("not an image file", "a zip inside")))
    return Summary(
        output=output,
        sorted=len(rows),
        failed=len(errors) - non_images,
        uncertain=len(uncertain),
        resumed=resumed,
        renamed=sum(1 for r in rows if was_renamed(r)),
        skipped_non_images=non_images,
        per_class={c: per[c] for c in class_names},
        uncertain_per_class={c: unc[c] for c in class_names if unc[c]},
    )
