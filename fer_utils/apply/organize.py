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
    OUTPUT/predictions.csv   one row per FACE: source, face, x, y, width, height, destination,
                             predicted, confidence, one column per class
    OUTPUT/errors.csv        source, reason (files that are not images, could not be read or
                             decoded, or photos in which no face was found)
    OUTPUT/_sheets/<Emotion>.png  contact sheets (:func:`fer_utils.study.figures.organize_contact_sheets`)
    OUTPUT/.organize-journal.csv  per-batch journal (what resuming reads)
    OUTPUT/.organize-state.json   model and settings the journal belongs to

Faces: each image is a face crop (sorted whole) or a photo searched for EVERY face
(:mod:`fer_utils.apply.detect` states the rule); a photo with several faces has a row per face,
and the image is copied once into the folder of each emotion present.

Images are decoded exactly as for training (:func:`fer_utils.data.datasets.decode_image`: RGB,
NEAREST resize to the model's input size; luminance for a model with one input channel), not with the report's ``cv2.imread`` (BGR) and
PIL's default (bicubic) resize, so the model sees faces the way it was trained on them.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from fer_utils.atomic import atomic_write_text
from fer_utils.errors import ConfigError, DataError
from fer_utils.apply.organize_io import (  # noqa: F401 - the file names are part of organize's interface too
    ERRORS_CSV,
    JOURNAL,
    PREDICTIONS_CSV,
    SHEETS_DIR,
    STATE,
    UNCERTAIN_DIR,
    DEST,
    atomic_copy,
    check_state,
    columns,
    copy_intact,
    destinations,
    drop_own_copy,
    pick_destination,
    model_fingerprint,
    read_journal,
    resolve_model,
    remove_stale_temps,
    was_renamed,
    write_csv,
)
from fer_utils.apply.detect import check_mode, detector_installed
from fer_utils.apply.faces import submit_decodes
from fer_utils.progress import progress_bar
from fer_utils.data.sources import IMAGE_SUFFIXES, Source, check_output_folder, is_image, write_error

#: Probabilities are written with this many decimals; the journal keeps them as text, so a
#: resumed or repeated run rebuilds ``predictions.csv`` byte for byte.
DECIMALS = 6
STATE_VERSION = 2  # 2: a row per face (face, box columns)


# --------------------------------------------------------------------------------------------
# The summary


@dataclass
class Summary:
    """What :func:`organize` did. ``str(summary)`` is one line for people."""

    output: Path
    sorted: int = 0  # images in OUTPUT now (this run and earlier runs)
    faces: int = 0  # faces labelled in them (rows of predictions.csv)
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
        if self.faces != self.sorted:
            s += f" ({self.faces} faces)"
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
    faces: str = "auto",
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
        Faces whose top probability is below it send the image to ``output/_uncertain/<Emotion>/``.
    faces : str
        ``auto`` (photos are searched for every face, small near-square images are face crops),
        ``detect`` (every image is searched) or ``whole`` (every image is one face):
        :mod:`fer_utils.apply.detect`.
    progress : bool
        A tqdm bar over images.

    Returns
    -------
    Summary
        Counts; ``str(summary)`` reads "N sorted, M failed, K uncertain; <class> <n>, ...".
    """
    input, output = check_paths(input, output)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r}: expected a positive integer such as 256")
    if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
        raise ConfigError(f"min_confidence {min_confidence!r}: expected a probability in [0, 1], e.g. 0.5")
    min_confidence = float(min_confidence) if min_confidence else None
    check_mode(faces)
    src = Source(input, exclude=output if input.is_dir() else None, what="a folder of face images")
    try:
        inputs, errors = _inputs(src, input)
        if faces != "whole":
            detector_installed()  # fail now, not in a worker thread
        model, class_names, size, channels = resolve_model(model, class_names)
        try:
            return _sort(src, inputs, errors, output, model, class_names, size, channels,
                         batch_size=batch_size, min_confidence=min_confidence, faces=faces,
                         progress=progress, workers=workers)
        except OSError as exc:  # full disk, read-only file system, quota: the journal keeps what is done
            raise write_error(output, exc, "The faces sorted so far are kept: free space (or fix permissions) "
                                           "and run the same command again to resume") from None
    finally:
        src.close()


def check_paths(input, output) -> tuple[Path, Path]:
    """INPUT exists and is not inside OUTPUT, OUTPUT can be written: checked before any work."""
    input, output = Path(input).expanduser(), Path(output).expanduser()
    if not input.exists():
        raise DataError(f"{input}: no such file or folder; expected a folder of face images or a .zip of one")
    if output.resolve() == input.resolve() or input.resolve().is_relative_to(output.resolve()):
        raise ConfigError(f"output {output} holds the input {input}; pass an output folder outside the input")
    check_output_folder(output, "OUTPUT")  # a file, read-only, full: say so before any work
    return input, output


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
          faces, progress, workers) -> Summary:
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(output)
    check_state(output, {
        "version": STATE_VERSION,
        "input": str(src.path.resolve()),
        "model": model_fingerprint(model, class_names, size),
        "class_names": list(class_names),
        "min_confidence": min_confidence,
        "faces": faces,
    })
    n_listed = len(errors)
    journal_path = output / JOURNAL
    done = read_journal(journal_path, class_names)  # rel -> (stamp, [row per face])
    stamps, own = {}, {}  # own: rel -> (destinations, stamp) of its copies from an earlier run
    todo = []
    for rel in inputs:
        try:
            stamps[rel] = src.stamp(rel)
        except OSError as exc:  # a symlink to itself, a broken link
            errors.append((rel, f"cannot read ({exc.strerror or exc})"))
            continue
        prev = done.get(rel)
        if prev and prev[0] == stamps[rel] and all(copy_intact(output / d, prev[0]) for d in destinations(prev[1])):
            continue
        if prev:  # changed since the last run (or a copy is gone): it replaces its own copies
            own[rel] = (destinations(prev[1]), prev[0])
        done.pop(rel, None)
        todo.append(rel)
    taken = {d for _, rows in done.values() for d in destinations(rows)}
    resumed = len(inputs) - len(todo) - (len(errors) - n_listed)

    if not journal_path.exists():
        atomic_write_text(journal_path, ",".join(["stamp", *columns(class_names)]) + "\n")

    bar = progress_bar(len(inputs), "organize", progress, initial=resumed, mininterval=0.5)
    workers = workers or max(2, min(8, (os.cpu_count() or 1) * 2))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool, open(journal_path, "a", encoding="utf-8", newline="") as journal:
            batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            decode = (size, faces, channels)
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
                probs = _predict(model, [f.pixels for r in ok for f in r[2]], batch_size, len(batches) > 1)
                lines, copies, replaced, i = [], [], [], 0
                for rel, data, found, _, mtime_ns in ok:
                    folders = []
                    for f in found:
                        p = probs[i]
                        i += 1
                        k = int(np.argmax(p))
                        unsure = min_confidence is not None and float(p[k]) < min_confidence
                        folders.append((f, p, k, f"{UNCERTAIN_DIR}/{class_names[k]}" if unsure else class_names[k]))
                    mine = own.pop(rel, None)
                    dest_of = {}
                    for folder in dict.fromkeys(fo for *_, fo in folders):  # one copy per emotion present
                        want = f"{folder}/{rel}"
                        reuse = next((d for d in (mine[0] if mine else ()) if d.split("/")[:-1] == want.split("/")[:-1]), None)
                        dest, there = pick_destination(output, want, data, taken, reuse)
                        taken.add(dest)
                        dest_of[folder] = dest
                        if not there:
                            copies.append(pool.submit(atomic_copy, data, output / dest, mtime_ns))
                    replaced.append((mine, list(dest_of.values())))
                    rows = [[rel, str(f.index), *map(str, f.box), dest_of[folder], class_names[k], f"{float(p[k]):.{DECIMALS}f}",
                             *[f"{v:.{DECIMALS}f}" for v in p]] for f, p, k, folder in folders]
                    done[rel] = (stamps[rel], rows)
                    lines += [[stamps[rel], *row] for row in rows]
                for c in copies:
                    c.result()
                for mine, dests in replaced:
                    drop_own_copy(output, mine, dests)
                # journal only after the copies exist: a journalled row is a finished image
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerows(lines)
                journal.write(buf.getvalue())
                journal.flush()
                os.fsync(journal.fileno())
                bar.update(len(ok))
    finally:
        bar.close()

    rows = [row for rel in sorted(done) for row in done[rel][1]]
    write_csv(output / PREDICTIONS_CSV, columns(class_names), rows)
    write_csv(output / ERRORS_CSV, ["source", "reason"], sorted(errors))

    uncertain = {r[0] for r in rows if r[DEST].startswith(UNCERTAIN_DIR + "/")}
    per = Counter(r[DEST + 1] for r in rows)
    unc = Counter(r[DEST + 1] for r in rows if r[DEST].startswith(UNCERTAIN_DIR + "/"))
    non_images = sum(1 for _, why in errors if why.startswith(("not an image file", "a zip inside")))
    return Summary(
        output=output,
        sorted=len(done),
        faces=len(rows),
        failed=len(errors) - non_images,
        uncertain=len(uncertain),
        resumed=resumed,
        renamed=len({r[DEST] for r in rows if was_renamed(r)}),
        skipped_non_images=non_images,
        per_class={c: per[c] for c in class_names},
        uncertain_per_class={c: unc[c] for c in class_names if unc[c]},
    )


def _predict(model, pixels, batch_size: int, pad: bool) -> np.ndarray:
    """Probabilities of the faces ``pixels`` (float64), in chunks of ``batch_size``; a short
    chunk is padded to the traced shape when ``pad`` (a new shape costs a retrace of the predict
    graph, which is slower than predicting a few blank images)."""
    out = []
    for j in range(0, len(pixels), batch_size):
        x = np.stack(pixels[j : j + batch_size])
        n = len(x)
        if pad and n < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
        probs = model.predict(x, batch_size=len(x)) if hasattr(model, "load_size") else model.predict_on_batch(x)
        out.append(np.asarray(probs, dtype=np.float64)[:n])
    return np.concatenate(out)
