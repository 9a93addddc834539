"""Sorting speed three ways on the same UTKFace faces, with the same model:

(a) ``fer_utils.apply.organize.organize``: decode in a thread pool, one ``predict_on_batch`` per batch;
(b) the report's Figure 13 loop: ``cv2.imread``, PIL resize to the model's input, one
    ``model.predict`` per image, ``shutil.copy`` by base name. Its two crash bugs are fixed
    (``image.fromarray`` on an ndarray; ``resize_image`` used before assignment) and, since our
    model rescales inside, the ``/ 255.0`` is left out; everything else is as printed. Timed
    on the first ``--loop-n`` images (sorted by name): at a few images per second, all 2,000
    would take minutes and measure nothing more;
(c) the PyPI ``fer`` package (its FER2013 model and Haar detector ship in its wheel, so it
    runs offline), in its own virtual environment (``--fer-python``), run as a user would:
    ``FER().detect_emotions(cv2.imread(path))``. When Haar finds no face, the whole image is
    passed as the face so every image gets a label. Its top emotion is compared with ours.

Without ``--model`` the model is the report's depth-4 CNN at 128x128 with RANDOM weights:
speed does not depend on the weights, agreement with ``fer`` does (it is then meaningless).

Usage::

    python benchmarks/bench_organize.py [--zip ../shared/data/utkface-sample.zip] [--model M.keras]
        [--loop-n 200] [--fer-python /tmp/ferpeer/bin/python]

Set up the peer once: ``python3 -m venv /tmp/ferpeer && /tmp/ferpeer/bin/pip install fer``.
Faces are unpacked to a temporary folder (never into the project: research-only data).
The last line is ``RESULT batched_vs_loop=<ratio> batched_vs_fer=<ratio>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from fer_utils.training import backend  # noqa: E402

backend.quiet()  # the package's CPU defaults (oneDNN on), as the fer command applies them
from fer_utils.apply.organize import organize  # noqa: E402
from fer_utils.apply.organize_io import read_predictions  # noqa: E402

#: The fer package's labels, mapped by name onto ours.
FER_TO_OURS = {
    "angry": "Anger", "disgust": "Disgust", "fear": "Fear", "happy": "Happiness",
    "sad": "Sadness", "surprise": "Surprise", "neutral": "Neutral",
}

FER_HELPER = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import logging
logging.disable(logging.WARNING)
import cv2
from fer.fer import FER
import fer as fer_pkg

files = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
det = FER()  # defaults: Haar cascade + the quantised FER2013 model (TFLite)
det.detect_emotions(cv2.imread(files[0]))  # warm-up, not timed
out, t0 = [], time.perf_counter()
for path in files:
    img = cv2.imread(path)
    faces = det.detect_emotions(img)
    found = bool(faces)
    if not faces:  # UTKFace images are face crops already: use the whole image
        h, w = img.shape[:2]
        faces = det.detect_emotions(img, face_rectangles=[(0, 0, w, h)])
    top = max(faces[0]["emotions"], key=faces[0]["emotions"].get) if faces else None
    out.append({"file": os.path.basename(path), "top": top, "face_found": found})
seconds = time.perf_counter() - t0
json.dump({"seconds": seconds, "n": len(files), "version": fer_pkg.__version__, "rows": out}, open(sys.argv[2], "w"))
'''


def report_loop(input_folder, output_folder, model, class_names, files=None):
    """The report's ``organize_images`` (Figure 13), with its two crash bugs fixed."""
    from PIL import Image

    try:
        import cv2
    except ImportError:  # the report used cv2; PIL reads the same files
        cv2 = None
    size = model.input_shape[1]
    labels = {}
    for root, dirs, names in os.walk(input_folder):
        for file in sorted(names):
            if files is not None and file not in files:
                continue
            if file.lower().endswith((".png", ".jpg", ".jpeg")):
                image_path = os.path.join(root, file)
                if cv2 is not None:
                    image = cv2.imread(image_path)
                    image = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")  # bug 1 fixed
                else:
                    image = Image.open(image_path).convert("RGB")
                resize_image = np.asarray(image.resize((size, size)))  # bug 2 fixed; PIL's default resample
                input_data = np.expand_dims(resize_image, axis=0)  # uint8: our model rescales inside
                pred = model.predict(input_data, verbose=0)
                predicted_label = class_names[int(np.argmax(pred))]
                labels[file] = predicted_label
                output_class_folder = os.path.join(output_folder, predicted_label)
                os.makedirs(output_class_folder, exist_ok=True)
                shutil.copy(image_path, os.path.join(output_class_folder, file))
    return labels


def find_fer_python(arg):
    for cand in (arg, os.environ.get("FER_PEER_PYTHON"), "/tmp/ferpeer/bin/python"):
        if cand and Path(cand).exists():
            return cand
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zip", default=str(ROOT.parent / "shared" / "data" / "utkface-sample.zip"))
    ap.add_argument("--model", default=None, help="a .keras model (default: depth-4 128x128, random weights)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--loop-n", type=int, default=200, help="images for the one-at-a-time loop (default 200)")
    ap.add_argument("--fer-n", type=int, default=0, help="images for the fer package (default: all)")
    ap.add_argument("--fer-python", default=None, help="python of a venv with 'pip install fer' (default /tmp/ferpeer/bin/python)")
    ap.add_argument("--keep", default=None, help="keep the work folder here (default: a temporary one, removed)")
    args = ap.parse_args()

    if not Path(args.zip).exists():
        print(f"SKIP: {args.zip} is absent (the real UTKFace sample lives in ../shared/data)")
        print("RESULT batched_vs_loop=n/a batched_vs_fer=n/a")
        return

    from fer_utils.data.datasets import CLASS_NAMES
    from fer_utils.models.report_cnn import build_model
    from fer_utils.models.registry import load_model

    if args.model:
        model, class_names = load_model(args.model, compile=False)
        print(f"model: {args.model} (input {model.input_shape[1]}x{model.input_shape[2]})")
    else:
        model, class_names = build_model(depth=4, input_size=128, seed=0, compile=False), CLASS_NAMES
        print("model: the report's depth-4 CNN at 128x128 with RANDOM weights (speed only; "
              "agreement with fer is meaningless without --model)")
    import tensorflow as tf

    print(f"CPU cores: {os.cpu_count()}, keras backend: {os.environ.get('KERAS_BACKEND', 'tensorflow')}, tf {tf.__version__}")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-organize-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        faces = work / "faces"
        if not faces.exists():
            with zipfile.ZipFile(args.zip) as zf:
                zf.extractall(faces)
        files = sorted(p for p in faces.rglob("*") if p.is_file())
        n = len(files)
        print(f"faces: {n} from {args.zip}, unpacked to {faces}")

        # Both paths warmed up the same way (graph tracing is not what is compared).
        size = model.input_shape[1]
        model.predict_on_batch(np.zeros((args.batch_size, size, size, 3), np.uint8))
        model.predict(np.zeros((1, size, size, 3), np.uint8), verbose=0)

        # (a) batched
        out_a = work / "out_batched"
        shutil.rmtree(out_a, ignore_errors=True)
        t0 = time.perf_counter()
        summary = organize(faces, out_a, model, class_names, batch_size=args.batch_size, progress=False)
        t_a = time.perf_counter() - t0
        rate_a = summary.sorted / t_a
        print(f"(a) organize, batched ({args.batch_size}):   {rate_a:8.1f} images/s  ({summary.sorted} in {t_a:.1f} s; {summary})")
        ours = {Path(s).name: p for s, p in zip(read_predictions(out_a)["source"], read_predictions(out_a)["predicted"])}

        # The ceiling: the model alone on the same number of ready-made batches. organize close
        # to it means decoding, copying and bookkeeping are hidden behind predict.
        x = np.zeros((args.batch_size, size, size, 3), np.uint8)
        t0, done = time.perf_counter(), 0
        while done < n:
            k = min(args.batch_size, n - done)
            model.predict_on_batch(x[:k])
            done += k
        rate_m = n / (time.perf_counter() - t0)
        print(f"    model alone, predict_on_batch:       {rate_m:8.1f} images/s  (organize reaches {rate_a / rate_m:.0%} of it; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

        # (b) the report's loop
        subset = {p.name for p in files[: args.loop_n]}
        out_b = work / "out_loop"
        shutil.rmtree(out_b, ignore_errors=True)
        t0 = time.perf_counter()
        loop_labels = report_loop(str(faces), str(out_b), model, class_names, files=subset)
        t_b = time.perf_counter() - t0
        rate_b = len(loop_labels) / t_b
        same = np.mean([loop_labels[f] == ours[f] for f in loop_labels])
        print(f"(b) report's loop, one predict per image: {rate_b:8.1f} images/s  ({len(loop_labels)} in {t_b:.1f} s; "
              f"same label as (a) for {same:.1%}: PIL's default bicubic resize vs training's NEAREST)")

        # (c) the fer package
        rate_c, fer_note = None, ""
        fer_python = find_fer_python(args.fer_python)
        if fer_python is None:
            fer_note = "n/a: no python with the fer package (python3 -m venv /tmp/ferpeer && /tmp/ferpeer/bin/pip install fer)"
        else:
            chosen = files[: args.fer_n] if args.fer_n else files
            (work / "fer_files.txt").write_text("".join(f"{p}\n" for p in chosen))
            (work / "fer_helper.py").write_text(FER_HELPER)
            proc = subprocess.run(
                [fer_python, str(work / "fer_helper.py"), str(work / "fer_files.txt"), str(work / "fer_out.json")],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                fer_note = f"n/a: the fer helper failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
            else:
                res = json.loads((work / "fer_out.json").read_text())
                rate_c = res["n"] / res["seconds"]
                rows = [r for r in res["rows"] if r["top"]]
                agree = np.mean([FER_TO_OURS[r["top"]] == ours[r["file"]] for r in rows])
                found = np.mean([r["face_found"] for r in res["rows"]])
                dist = {}
                for r in rows:
                    dist[FER_TO_OURS[r["top"]]] = dist.get(FER_TO_OURS[r["top"]], 0) + 1
                fer_note = (f"fer {res['version']}: Haar found a face in {found:.1%}; top emotion agrees with ours on "
                            f"{agree:.1%} of {len(rows)}; fer's labels: {dict(sorted(dist.items(), key=lambda kv: -kv[1]))}")
        if rate_c is not None:
            print(f"(c) fer package (Haar + FER2013 TFLite):   {rate_c:8.1f} images/s  ({fer_note})")
        else:
            print(f"(c) fer package: {fer_note}")
        ours_dist = summary.per_class
        print(f"our labels: {ours_dist}")

        r_loop = f"{rate_a / rate_b:.1f}"
        r_fer = f"{rate_a / rate_c:.2f}" if rate_c else "n/a"
        print(f"RESULT batched_vs_loop={r_loop} batched_vs_fer={r_fer}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
