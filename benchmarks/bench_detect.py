"""Faces in ordinary photos: recall, false faces, expression accuracy and speed of the whole
pipeline (detect + align + classify), beside the ``fer`` package's own ``detect_emotions``.

    python benchmarks/bench_detect.py [--scenes 120] [--empty 30] [--seed 0] [--fer-package DIR]
    python benchmarks/bench_detect.py --template      # re-measure fer_utils.apply.detect.TEMPLATE
    python benchmarks/bench_detect.py --utk 300       # do UTKFace crops lose anything by the crop rule?
    python benchmarks/bench_detect.py --haar          # also OpenCV's Haar cascade in MTCNN's place
    python benchmarks/bench_detect.py --loose 300     # the coverage check of --faces auto, alone

The detection set is built here, from the shared data (never saved): RAF-DB test and UTKFace
crops pasted at random positions, sizes (40-400 px on their side) and small rotations (+-10
degrees) into larger backgrounds that hold no face (smooth noise, gradients, stripes), 1 to 5
faces each, with known boxes; and background-only images. A detection is a hit when its IoU with
a pasted face's box (the unrotated square the crop was pasted as) is at least 0.5. Expression
accuracy is scored on pasted RAF-DB faces that were found, against their RAF-DB label, and beside
the same model on the very same crops as given (the aligned crops it was trained on).

``--fer-package DIR``: a folder holding the unpacked ``fer`` wheel (``pip download --no-deps
fer==22.5.1`` and unzip it; 25.x needs torch). Its ``detect_emotions`` runs with its default
detector (OpenCV's Haar cascade) on the same images. Its ``fer.classes`` imports moviepy for
videos, and ``pkg_resources`` (gone from setuptools 81) to find its files; stand-ins are put in
their place (only still images are used here).
Last line: RESULT {json}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import types
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from fer_utils import paths  # noqa: E402
from fer_utils.training import backend  # noqa: E402

backend.quiet()
RAF = paths.SHARED_DATA / "raf-basic.zip"
UTK = paths.SHARED_DATA / "utkface-sample.zip"
RAF_LABELS = {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger", 7: "Neutral"}


def raf_faces(split: str, n: int, rng):
    z = zipfile.ZipFile(RAF)
    labels = {}
    for line in z.read("basic/EmoLabel/list_patition_label.txt").decode().split("\n"):
        if line.strip():
            name, lab = line.split()
            labels[name.replace(".jpg", "_aligned.jpg")] = RAF_LABELS[int(lab)]
    names = sorted(k for k in labels if k.startswith(split))
    pick = [names[i] for i in rng.choice(len(names), min(n, len(names)), replace=False)]
    return [(np.asarray(Image.open(io.BytesIO(z.read(f"basic/Image/aligned/{k}"))).convert("RGB")), labels[k]) for k in pick]


def utk_faces(n: int, rng):
    z = zipfile.ZipFile(UTK)
    names = sorted(m for m in z.namelist() if m.lower().endswith(".jpg"))
    pick = [names[i] for i in rng.choice(len(names), min(n, len(names)), replace=False)]
    return [(np.asarray(Image.open(io.BytesIO(z.read(k))).convert("RGB")), None) for k in pick]


def background(rng) -> np.ndarray:
    w, h = int(rng.integers(640, 1025)), int(rng.integers(480, 769))
    kind = rng.integers(3)
    if kind == 0:  # smooth colour noise
        small = rng.integers(0, 256, (int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        arr = np.asarray(img, np.float32) + rng.normal(0, 8, (h, w, 3))
    elif kind == 1:  # gradient
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, w)[None, :, None]
        arr = (a * (1 - t) + b * t) * np.ones((h, 1, 1)) + rng.normal(0, 6, (h, w, 3))
    else:  # stripes
        period = rng.integers(8, 60)
        x = np.arange(w)[None, :, None]
        arr = 127 + 100 * np.sin(2 * np.pi * x / period + rng.uniform(0, 6)) * np.ones((h, 1, 3)) + rng.normal(0, 6, (h, w, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def scene(rng, pool):
    """A background with 1-5 pasted faces; returns (image, [(box, label or None, the crop)])."""
    bg = Image.fromarray(background(rng))
    w, h = bg.size
    boxes = []
    for _ in range(int(rng.integers(1, 6))):
        face, label = pool[int(rng.integers(len(pool)))]
        for _attempt in range(30):
            side = int(rng.integers(40, min(400, int(0.7 * min(w, h))) + 1))
            x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            if all(x + side + 10 < bx or bx + bs + 10 < x or y + side + 10 < by or by + bs + 10 < y for (bx, by, bs, _), *_ in boxes):
                break
        else:
            continue
        img = Image.fromarray(face).resize((side, side), Image.BILINEAR)
        angle = float(rng.uniform(-10, 10))
        rot = img.convert("RGBA").rotate(angle, resample=Image.BILINEAR, expand=True)
        ox, oy = x + side // 2 - rot.size[0] // 2, y + side // 2 - rot.size[1] // 2
        bg.paste(rot, (ox, oy), rot)
        boxes.append(((x, y, side, side), label, face))
    return np.asarray(bg.convert("RGB")), boxes


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix, iy = max(0, min(ax + aw, bx + bw) - max(ax, bx)), max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


def match(truth, found):
    """Greedy matching at IoU >= 0.5: [(truth index, found index)], false positives."""
    pairs = sorted(((iou(t[0], f["box"]), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    ti, fj, out = set(), set(), []
    for v, i, j in pairs:
        if v >= 0.5 and i not in ti and j not in fj:
            ti.add(i)
            fj.add(j)
            out.append((i, j))
    return out, len(found) - len(fj)


def wilson(k, n):
    from fer_utils.stats import wilson_interval

    return [round(v, 4) for v in wilson_interval(k, n)]


def evaluate(name, scenes, detect_fn, crop_label=None):
    """Recall, false faces, pipeline accuracy on the pasted RAF-DB faces found, and (``crop_label``:
    the same model on the crop as given) the crop accuracy on those very faces, paired."""
    t0 = time.perf_counter()
    hits = faces = fp = right = scored = 0
    found_raf = []
    for img, truth in scenes:
        found = detect_fn(img)
        pairs, extra = match(truth, found)
        fp += extra
        faces += len(truth)
        hits += len(pairs)
        for i, j in pairs:
            if truth[i][1] is not None:
                scored += 1
                right += found[j]["label"] == truth[i][1]
                found_raf.append((truth[i], found[j]["label"] == truth[i][1]))
    secs = time.perf_counter() - t0
    out = {"who": name, "faces": faces, "recall": round(hits / faces, 4), "recall_ci95": wilson(hits, faces),
           "false_faces_per_image": round(fp / len(scenes), 4), "images": len(scenes),
           "pasted_raf_found": scored, "pipeline_accuracy": round(right / max(scored, 1), 4),
           "pipeline_accuracy_ci95": wilson(right, scored), "seconds": round(secs, 1),
           "faces_per_second": round(faces / secs, 2), "images_per_second": round(len(scenes) / secs, 2)}
    if crop_label is not None and found_raf:
        from fer_utils.stats import mcnemar

        crop_ok = [crop_label(t[2]) == t[1] for t, _ in found_raf]
        pipe_ok = [ok for _, ok in found_raf]
        out["same_faces_as_crops_accuracy"] = round(float(np.mean(crop_ok)), 4)
        b = sum(c and not p for c, p in zip(crop_ok, pipe_ok))
        c = sum(p and not c_ for c_, p in zip(crop_ok, pipe_ok))
        out["crops_vs_pipeline_mcnemar"] = {"crop_only_right": b, "pipeline_only_right": c, "p_exact": round(mcnemar(b, c)["p_exact"], 4)}
    return out


def ours(rec):
    from fer_utils.apply.detect import NoFace

    def run(img):
        try:
            return [{"box": r["box"], "label": r["label"]} for r in rec.predict(img)]
        except NoFace:
            return []
    return run


def haar(rec):
    """OpenCV's Haar cascade (opencv < 5 ships it) as the detector, the box cropped and resized
    (it gives no landmarks to align with): the alternative measured before choosing MTCNN."""
    import cv2

    from fer_utils.apply.detect import model_pixels

    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    side = rec.predictor.load_size

    def run(img):
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        boxes = [tuple(int(v) for v in b) for b in cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))]
        if not boxes:
            return []
        faces = [model_pixels(Image.fromarray(img[y : y + h, x : x + w]), side, 3) for x, y, w, h in boxes]
        probs = rec.predictor.predict(np.stack(faces))
        return [{"box": list(b), "label": rec.class_names[int(p.argmax())]} for b, p in zip(boxes, probs)]
    return run


def fer_package(folder):
    sys.path.insert(0, str(folder))
    stub = types.ModuleType("moviepy.editor")  # fer.classes imports it for videos only
    sys.modules.setdefault("moviepy", types.ModuleType("moviepy"))
    sys.modules["moviepy.editor"] = stub
    try:
        import pkg_resources  # noqa: F401  (setuptools 81 dropped it; fer 22.5 finds its files with it)
    except ImportError:
        pr = types.ModuleType("pkg_resources")
        pr.resource_filename = lambda pkg, rel: os.path.join(str(folder), *pkg.split("."), rel)
        sys.modules["pkg_resources"] = pr
    from fer import FER

    from fer_utils.apply.evaluate import canonical

    det = FER()

    def run(img):
        out = []
        for f in det.detect_emotions(img):
            emo = max(f["emotions"], key=f["emotions"].get)
            out.append({"box": [int(v) for v in f["box"]], "label": canonical(emo)})
        return out
    return run


def template(n: int, seed: int) -> None:
    from fer_utils.apply.detect import KEYPOINTS, detector

    rng = np.random.default_rng(seed)
    faces = raf_faces("train", n, rng)
    det = detector()
    pts = []
    for i in range(0, len(faces), 50):
        for found in det.detect_faces([f for f, _ in faces[i : i + 50]]):
            if found:
                k = max(found, key=lambda d: d["confidence"])["keypoints"]
                pts.append([k[name] for name in KEYPOINTS])
    p = np.array(pts, float) / 100.0
    print(f"{len(p)} of {len(faces)} RAF-DB train crops (seed {seed}): mean {np.round(p.mean(0), 4).tolist()}, "
          f"sd {np.round(p.std(0), 4).tolist()}")


def utk_rule(n: int, seed: int, rec_whole, rec_detect) -> dict:
    """The labels of UTKFace crops as the crop rule takes them (whole) and when they are searched and aligned."""
    from fer_utils.apply.detect import NoFace

    rng = np.random.default_rng(seed)
    faces = utk_faces(n, rng)
    same = found = 0
    for img, _ in faces:
        a = rec_whole.predict(img)[0]["label"]
        try:
            b = rec_detect.predict(img)
        except NoFace:
            continue
        found += 1
        same += max(b, key=lambda r: r["box"][2] * r["box"][3])["label"] == a
    return {"utk_crops": n, "detector_finds_a_face": found, "same_label_whole_vs_aligned": round(same / max(found, 1), 4)}


def portrait(rng, face):
    """A loosely framed crop-sized picture: ``face`` (a RAF-DB crop) at 30-65% of the shorter side
    of a 160-256 px near-square background, turned up to 10 degrees; (picture, the face's share)."""
    long = int(rng.integers(160, 257))
    short = int(long / rng.uniform(1.0, 1.2))
    w, h = (long, short) if rng.random() < 0.5 else (short, long)
    bg = Image.fromarray(background(rng)).resize((w, h), Image.BILINEAR)
    share = float(rng.uniform(0.3, 0.65))
    side = int(share * min(w, h))
    img = Image.fromarray(face).resize((side, side), Image.BILINEAR).convert("RGBA").rotate(
        float(rng.uniform(-10, 10)), resample=Image.BILINEAR, expand=True)
    bg.paste(img, (int(rng.integers(0, w - img.size[0] + 1)), int(rng.integers(0, h - img.size[1] + 1))), img)
    return np.asarray(bg.convert("RGB")), share


def loose_rule(n: int, seed: int, model=None) -> dict:
    """The coverage check of ``faces="auto"`` (fer_utils.apply.detect.crop_or_photo), measured:

    * n loosely framed pictures (:func:`portrait`, one RAF-DB test face each): how many the check
      searches, and the expression accuracy of the largest face under "auto" against the same
      pictures taken whole (the rule before the check) and the same faces as their crops, paired;
    * n UTKFace crops (200 px) and n RAF-DB test crops brought to 200 px: how many the check
      wrongly takes for photos (it should take none), and the time per crop with the check
      against without it (seconds per image, one run)."""
    from fer_utils.apply import detect
    from fer_utils.apply.recognize import Recognizer
    from fer_utils.stats import mcnemar

    auto, whole = Recognizer(model, faces="auto"), Recognizer(model, faces="whole")
    rng = np.random.default_rng(seed)
    faces = raf_faces("test", n, rng)
    pics = [(*portrait(rng, f), label, f) for f, label in faces]
    rows = []
    for img, share, label, crop in pics:
        got = auto.predict(img)
        top = max(got, key=lambda r: r["box"][2] * r["box"][3])
        rows.append({"share": share, "searched": got[0]["how"] == "detected", "auto": top["label"] == label,
                     "whole": whole.predict(img)[0]["label"] == label, "crop": whole.predict(crop)[0]["label"] == label})
    k = lambda key, sub=rows: sum(r[key] for r in sub)  # noqa: E731
    b, c = sum(r["auto"] and not r["whole"] for r in rows), sum(r["whole"] and not r["auto"] for r in rows)
    out = {"pictures": n, "searched": k("searched"), "searched_ci95": wilson(k("searched"), n),
           "accuracy_auto": round(k("auto") / n, 4), "accuracy_auto_ci95": wilson(k("auto"), n),
           "accuracy_whole": round(k("whole") / n, 4), "accuracy_whole_ci95": wilson(k("whole"), n),
           "accuracy_as_crops": round(k("crop") / n, 4),
           "auto_vs_whole_mcnemar": {"auto_only_right": b, "whole_only_right": c, "p_exact": mcnemar(b, c)["p_exact"]}}
    for lo, hi in ((0.3, 0.5), (0.5, 0.65)):
        sub = [r for r in rows if lo <= r["share"] < hi]
        out[f"share_{lo}-{hi}"] = {"pictures": len(sub), "searched": k("searched", sub), "accuracy_auto": round(k("auto", sub) / max(len(sub), 1), 4),
                                   "accuracy_whole": round(k("whole", sub) / max(len(sub), 1), 4)}
    utk = [f for f, _ in utk_faces(n, rng)]
    raf200 = [np.asarray(Image.fromarray(f).resize((200, 200), Image.BILINEAR)) for f, _ in raf_faces("test", n, rng)]
    for name, crops in (("utk_crops", utk), ("raf_crops_at_200px", raf200)):
        t0 = time.perf_counter()
        taken = sum(bool(detect.crop_or_photo(img)) for img in crops)
        t1 = time.perf_counter()
        for img in crops:
            whole.predict(img)
        t2 = time.perf_counter()
        for img in crops:
            auto.predict(img)
        t3 = time.perf_counter()
        out[name] = {"crops": len(crops), "taken_for_photos": taken, "check_seconds_per_image": round((t1 - t0) / len(crops), 4),
                     "predict_whole_seconds_per_image": round((t2 - t1) / len(crops), 4),
                     "predict_auto_seconds_per_image": round((t3 - t2) / len(crops), 4),
                     "auto_over_whole_time": round((t3 - t2) / max(t2 - t1, 1e-9), 1)}
    out["crop_min_fill"], out["loose_min_side"] = detect.CROP_MIN_FILL, detect.LOOSE_MIN_SIDE
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=120)
    ap.add_argument("--empty", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="default: the shipped model")
    ap.add_argument("--fer-package", default=None, metavar="DIR")
    ap.add_argument("--haar", action="store_true", help="also OpenCV's Haar cascade as our detector (no alignment)")
    ap.add_argument("--template", action="store_true")
    ap.add_argument("--utk", type=int, default=0, metavar="N")
    ap.add_argument("--loose", type=int, default=0, metavar="N",
                    help="measure the coverage check of --faces auto alone (N pictures, N UTKFace and N RAF-DB crops)")
    args = ap.parse_args()
    if not RAF.exists():
        sys.exit(f"{RAF}: not found; the benchmark needs the shared data (set FER_DATA)")
    if args.template:
        template(400, args.seed)
        return
    if args.loose:
        from fer_utils.apply.recognize import Recognizer

        result = {"model": Recognizer(args.model, faces="whole").about["name"], "seed": args.seed,
                  "cpu_flags": backend.device_info().get("cpu_flags"), "loose": loose_rule(args.loose, args.seed, args.model)}
        print(json.dumps(result, indent=2))
        print("RESULT " + json.dumps(result))
        return
    from fer_utils.apply.recognize import Recognizer

    rec = Recognizer(args.model, faces="detect")
    result = {"model": rec.about["name"], "seed": args.seed, "cpu_flags": backend.device_info().get("cpu_flags")}
    if args.utk:
        result.update(utk_rule(args.utk, args.seed, Recognizer(args.model, faces="whole"), rec))
    rng = np.random.default_rng(args.seed)
    pool = raf_faces("test", 400, rng) + utk_faces(200, rng)
    scenes = [scene(rng, pool) for _ in range(args.scenes)] + [(background(rng), []) for _ in range(args.empty)]
    # the same model on the same RAF-DB crops as given (aligned, what it was trained on)
    crops = [f for _, truth in scenes for f in truth if f[1] is not None]
    print(f"{len(scenes)} images ({args.empty} without a face), {sum(len(t) for _, t in scenes)} faces "
          f"({len(crops)} from RAF-DB test)", file=sys.stderr)
    whole = Recognizer(args.model, faces="whole")
    result["ours"] = evaluate("ours", scenes, ours(rec), crop_label=lambda crop: whole.predict(crop)[0]["label"])
    if args.haar:
        result["ours_with_haar"] = evaluate("ours, Haar detector", scenes, haar(rec))
    if args.fer_package:
        result["fer_package"] = evaluate("fer package", scenes, fer_package(args.fer_package))
        result["speed_ratio"] = round(result["ours"]["faces_per_second"] / max(result["fer_package"]["faces_per_second"], 1e-9), 2)
    print(json.dumps(result, indent=2))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
