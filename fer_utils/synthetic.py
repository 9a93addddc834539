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
import io
import json
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .datasets import CLASS_NAMES, SYNTHETIC_MARKER
from .errors import DataError
from .progress import progress_bar

#: Bump when the drawing changes, so a rerun over an older set regenerates it.
GENERATOR_VERSION = 2  # 2: stronger, larger expression cues for the few-step demo profile
IMAGE_SIZE = 100  # RAF-DB's aligned crops are 100x100
SUPERSAMPLE = 2  # draw at 2x and downsample: smooth edges without per-primitive antialiasing
CANVAS = IMAGE_SIZE * SUPERSAMPLE
MANIFEST = "synthetic.json"
TRUTH_CSV = "unlabelled_truth.csv"
SPLIT_IDS = {"train": 0, "test": 1, "unlabelled": 2}
_PLAN_STREAM = 0x91A4  # a separate random stream for the label plan

#: RAF-DB train counts per class (of 12,271), the target class shares.
RAF_TRAIN_COUNTS = {
    "Surprise": 1290, "Fear": 281, "Disgust": 717, "Happiness": 4772,
    "Sadness": 1982, "Anger": 705, "Neutral": 2524,
}
CLASS_SHARES = np.array([RAF_TRAIN_COUNTS[c] for c in CLASS_NAMES], dtype=float) / sum(RAF_TRAIN_COUNTS.values())
MIN_PER_CLASS = 2

#: Range of expression intensity; the lower end sets how ambiguous faces get. Most faces draw
#: from :data:`INTENSITY`, a share :data:`WEAK_SHARE` from the weaker :data:`WEAK_INTENSITY`.
INTENSITY = (0.8, 1.0)
WEAK_INTENSITY = (0.35, 0.8)
WEAK_SHARE = 0.1
LABEL_NOISE = 0.03
GRAYSCALE_SHARE = 0.10
OCCLUSION_SHARE = 0.15

AUS = ("brow_raise", "inner_brow", "brow_lower", "brow_together", "eye_open", "cheek_raise",
       "nose_wrinkle", "upper_lip", "lip_corner", "lip_stretch", "lip_press", "jaw_drop")

#: Action-unit prototypes at full intensity (eye_open < 0 narrows, lip_corner < 0 pulls down).
#: Some exceed 1: a more-than-typical movement, so the cue stays visible at 72 px.
PROTOTYPES = {
    "Neutral": {},
    "Happiness": {"lip_corner": 1.0, "cheek_raise": 1.0, "eye_open": -0.6, "jaw_drop": 0.4},
    "Sadness": {"inner_brow": 1.3, "brow_together": 0.5, "lip_corner": -1.3, "eye_open": -0.35},
    "Surprise": {"brow_raise": 1.2, "eye_open": 1.2, "jaw_drop": 1.2},
    "Fear": {"brow_raise": 0.6, "inner_brow": 0.7, "brow_together": 0.9, "eye_open": 1.0,
             "lip_stretch": 1.0, "jaw_drop": 0.35},
    "Anger": {"brow_lower": 1.3, "brow_together": 1.2, "eye_open": -0.7, "lip_press": 1.0},
    "Disgust": {"nose_wrinkle": 1.2, "upper_lip": 1.2, "brow_lower": 0.4, "eye_open": -0.35,
                "lip_corner": -0.25},
}

SKIN_TONES = np.array([(255, 224, 200), (240, 196, 160), (210, 160, 120), (170, 115, 80),
                       (120, 80, 55), (80, 52, 38)], dtype=float)
HAIR_COLOURS = [(25, 20, 18), (60, 40, 25), (110, 75, 40), (190, 150, 90), (150, 60, 30)]
IRIS_COLOURS = [(60, 40, 25), (90, 60, 30), (70, 110, 150), (80, 120, 80)]


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
# Sampling one face: identity, expression, scene.


def _lerp(c0, c1, t):
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c0, c1))


def _sample_age(rng, split: str) -> int:
    if split == "unlabelled":
        # A UTKFace-like spread: children to the old, most in between.
        return int(np.clip(rng.choice([rng.integers(1, 13), rng.integers(13, 90)], p=[0.2, 0.8]), 1, 90))
    return int(rng.integers(16, 80))


def _sample_identity(rng, age: int) -> dict:
    child = max(0.0, (13 - age) / 12)  # 1 for a baby, 0 from 13 on
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(tone)
    skin = _lerp(SKIN_TONES[lo], SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)], tone - lo)
    gender = int(rng.integers(0, 2))
    a = rng.uniform(68, 75) * (1 + 0.04 * child)  # half width of the face, in canvas pixels
    grey = np.clip((age - 45) / 35, 0, 1) * rng.uniform(0.3, 1)
    hair = _lerp(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], (200, 200, 200), grey)
    return {
        "age": age, "gender": gender, "child": child, "tone": tone, "skin": skin,
        "a": a, "b": a * rng.uniform(1.12, 1.28) * (1 - 0.1 * child),
        "hair": hair, "hair_style": int(rng.choice(4, p=[0.1, 0.35, 0.25, 0.3] if gender else [0.2, 0.5, 0.2, 0.1])),
        "hairline": rng.uniform(48, 66),  # half-angle of the hair cap, degrees: larger is lower
        "eye_y": rng.uniform(-0.18, -0.08) + 0.12 * child,  # child eyes sit lower in the head
        "eye_dx": rng.uniform(0.33, 0.45),
        "eye_r": rng.uniform(0.14, 0.17) * (1 + 0.3 * child),
        "iris": IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
        "brow_w": rng.uniform(6.0, 8.0) * (1.15 if not gender else 1.0),
        "brow_gap": rng.uniform(1.3, 1.8),
        "nose_len": rng.uniform(0.22, 0.32) * (1 - 0.35 * child),
        "mouth_y": rng.uniform(0.42, 0.52) - 0.05 * child,
        "mouth_w": rng.uniform(0.34, 0.42) * (1 - 0.3 * child),
        "lip": _lerp(skin, (150, 40, 55), rng.uniform(0.5, 0.75)),
        "wrinkles": float(np.clip((age - 40) / 40, 0, 1)),
        "clothes": tuple(int(v) for v in rng.integers(20, 235, 3)),
    }


def _sample_actions(rng, expression: str, intensity: float) -> dict:
    proto = PROTOTYPES[expression]
    # Small random activations everywhere: faces are never perfectly still.
    acts = {au: float(rng.normal(0, 0.06)) for au in AUS}
    for au, v in proto.items():
        acts[au] += intensity * v * rng.uniform(0.8, 1.2)
    return acts


def _sample_scene(rng) -> dict:
    return {
        "angle": rng.uniform(-12, 12),
        "scale": rng.uniform(0.9, 1.08),
        "shift": rng.uniform(-9, 9, 2) * SUPERSAMPLE,
        "mirror": bool(rng.random() < 0.5),
        "light_dir": rng.uniform(0, 2 * np.pi),
        "light_strength": rng.uniform(0, 0.2),
        "contrast": rng.uniform(0.85, 1.15),
        "brightness": rng.uniform(-12, 12),
        "gray": bool(rng.random() < GRAYSCALE_SHARE),
        "blur": float(rng.choice([0, rng.uniform(0.3, 0.8)], p=[0.8, 0.2])),
        "noise": rng.uniform(0, 5),
        "quality": int(rng.integers(45, 96)),
        "occlusion": str(rng.choice(["none", "glasses", "sunglasses", "hand", "block"],
                                    p=[1 - OCCLUSION_SHARE, 0.05, 0.03, 0.04, 0.03])),
    }


# --------------------------------------------------------------------------------------------
# Drawing: background, the face on its own layer, pose, occlusions, camera.


def _background(rng) -> Image.Image:
    # Muted colours: half-way between a random colour and its grey.
    grey = int(rng.integers(70, 190))
    base = _lerp((grey, grey, grey), rng.integers(30, 230, 3), 0.35)
    img = Image.new("RGB", (CANVAS, CANVAS), base)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.integers(-40, CANVAS, 2)
        w, h = rng.integers(20, 140, 2)
        # Clutter mostly blended into the base colour: visible, but much fainter than the face.
        colour = _lerp(base, rng.integers(0, 256, 3), 0.22)
        shape = d.rectangle if rng.random() < 0.6 else d.ellipse
        shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=colour)
    return img.filter(ImageFilter.BoxBlur(int(rng.integers(0, 6))))


def _bezier(p0, p1, p2, n=12):
    """Points of a quadratic Bezier curve, used for lips, lids and folds."""
    t = np.linspace(0, 1, n)[:, None]
    pts = (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * np.array(p1) + t ** 2 * np.array(p2)
    return [tuple(p) for p in pts]


def _through(p0, mid, p2, n=12):
    """A quadratic curve from p0 to p2 that passes through ``mid`` halfway."""
    ctrl = (2 * mid[0] - (p0[0] + p2[0]) / 2, 2 * mid[1] - (p0[1] + p2[1]) / 2)
    return _bezier(p0, ctrl, p2, n)


def _darker(c, f):
    return tuple(int(v * f) for v in c)


def _draw_face(ident: dict, act: dict) -> Image.Image:
    """The face, hair, neck and shoulders on a transparent layer, centred on the canvas."""
    layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = CANVAS / 2, CANVAS / 2 + 4
    a, b = ident["a"], ident["b"]
    skin, hair = ident["skin"], ident["hair"]
    _draw_body(d, ident, cx, cy)
    if ident["hair_style"] == 3:  # long hair falls behind the face
        d.rounded_rectangle([cx - a * 1.25, cy - b * 1.1, cx + a * 1.25, cy + b * 1.15], radius=a, fill=hair)
    for s in (-1, 1):  # ears
        d.ellipse([cx + s * a * 0.98 - a * 0.14, cy - b * 0.15, cx + s * a * 0.98 + a * 0.14, cy + b * 0.22], fill=_darker(skin, 0.92))
    d.ellipse([cx - a, cy - b, cx + a, cy + b], fill=skin)
    _draw_forehead_lines(d, ident, act, cx, cy)
    _draw_hair(d, ident, cx, cy)
    _draw_cheeks(d, ident, act, cx, cy)
    for s in (-1, 1):
        _draw_eye(d, ident, act, cx, cy, s)
        _draw_brow(d, ident, act, cx, cy, s)
    _draw_nose(d, ident, act, cx, cy)
    _draw_mouth(d, ident, act, cx, cy)
    return layer


def _draw_body(d, ident, cx, cy):
    a, b = ident["a"], ident["b"]
    d.rectangle([cx - a * 0.42, cy + b * 0.5, cx + a * 0.42, cy + b * 1.3], fill=_darker(ident["skin"], 0.85))
    d.ellipse([cx - a * 2.2, cy + b * 1.05, cx + a * 2.2, cy + b * 2.6], fill=ident["clothes"])


def _draw_hair(d, ident, cx, cy):
    a, b, style = ident["a"], ident["b"], ident["hair_style"]
    if style == 0:  # very short or bald: a thin shadow of hair
        d.chord([cx - a, cy - b, cx + a, cy + b], 200, 340, fill=_lerp(ident["hair"], ident["skin"], 0.6))
        return
    # The hair cap covers the top of the face ellipse down to the hairline.
    half = ident["hairline"]
    d.chord([cx - a * 1.06, cy - b * 1.08, cx + a * 1.06, cy + b * 1.02], 270 - half, 270 + half, fill=ident["hair"])
    if style == 2:  # a fringe over the forehead
        d.chord([cx - a * 0.95, cy - b * 1.0, cx + a * 0.95, cy - b * 0.15], 180, 360, fill=ident["hair"])


def _eye_centre(ident, cx, cy, side):
    a, b = ident["a"], ident["b"]
    return cx + side * ident["eye_dx"] * a * 2 * 0.6, cy + ident["eye_y"] * b * 1.3


def _draw_eye(d, ident, act, cx, cy, side):
    ex, ey = _eye_centre(ident, cx, cy, side)
    r = ident["eye_r"] * ident["a"] * 2 * 0.55
    openness = float(np.clip(1 + 0.85 * act["eye_open"] - 0.4 * act["cheek_raise"], 0.12, 2.0))
    h = r * 0.55 * openness
    w = r * 1.15
    d.ellipse([ex - w, ey - h, ex + w, ey + h], fill=(245, 245, 240))
    ir = min(r * 0.62, h * 1.05)
    d.ellipse([ex - ir, ey - ir, ex + ir, ey + ir], fill=ident["iris"])
    pr = ir * 0.45
    d.ellipse([ex - pr, ey - pr, ex + pr, ey + pr], fill=(10, 10, 10))
    # Lids: skin above and below the opening hides what the ellipse overdrew of the iris.
    lid = _darker(ident["skin"], 0.97)
    d.chord([ex - w * 1.3, ey - h - ir * 2, ex + w * 1.3, ey - h * 0.98], 0, 180, fill=lid)
    d.chord([ex - w * 1.3, ey + h * 0.98, ex + w * 1.3, ey + h + ir * 2], 180, 360, fill=lid)
    d.arc([ex - w, ey - h, ex + w, ey + h], 190, 350, fill=(30, 20, 20), width=max(2, int(r * 0.18)))
    if act["cheek_raise"] > 0.3:  # the lower lid pushed up by the cheek: a smile's crease
        k = min(1.0, act["cheek_raise"])
        d.arc([ex - w, ey - h + r * 0.1, ex + w, ey + h + r * 0.5 * k], 20, 160, fill=_darker(ident["skin"], 0.7), width=2)


def _draw_brow(d, ident, act, cx, cy, side):
    ex, ey = _eye_centre(ident, cx, cy, side)
    r = ident["eye_r"] * ident["a"] * 2 * 0.55
    base = ey - r * ident["brow_gap"]
    raise_all = 1.5 * r * act["brow_raise"]
    inner_up = 1.2 * r * act["inner_brow"]
    lower = 1.0 * r * act["brow_lower"]
    together = 0.6 * r * act["brow_together"]
    inner = (ex - side * (r * 1.2 - together), base - raise_all - inner_up + lower * 1.3)
    outer = (ex + side * r * 1.4, base - raise_all * 0.8 + lower * 0.3 + 0.2 * inner_up)
    arch = r * (0.25 + 0.35 * max(0.0, act["brow_raise"]))
    mid = ((inner[0] + outer[0]) / 2, min(inner[1], outer[1]) - arch)
    colour = _lerp(ident["hair"], (15, 10, 8), 0.6)
    d.line(_through(inner, mid, outer, 8), fill=colour, width=int(ident["brow_w"] * SUPERSAMPLE), joint="curve")
    if act["brow_together"] > 0.35 and act["brow_lower"] > 0.3:  # vertical frown lines (AU4)
        x = cx + side * r * 0.35
        d.line([(x, inner[1] - r * 0.1), (x, inner[1] + r * 0.6)], fill=_darker(ident["skin"], 0.72), width=2)


def _draw_forehead_lines(d, ident, act, cx, cy):
    # Raised brows and age both wrinkle the forehead: the same cue from two causes.
    k = max(act["brow_raise"] + 0.5 * act["inner_brow"], 0) + ident["wrinkles"] * 0.7
    if k < 0.35:
        return
    a, b = ident["a"], ident["b"]
    colour = _darker(ident["skin"], 0.8)
    for i in range(min(3, int(k * 3))):
        y = cy - b * (0.42 + 0.09 * i)
        d.arc([cx - a * 0.5, y, cx + a * 0.5, y + b * 0.12], 200, 340, fill=colour, width=2)


def _draw_cheeks(d, ident, act, cx, cy):
    k = act["cheek_raise"]
    if k < 0.15:
        return
    a, b = ident["a"], ident["b"]
    colour = _lerp(ident["skin"], (235, 90, 100), min(0.5, 0.45 * k))
    for s in (-1, 1):
        x, y = cx + s * a * 0.55, cy + b * (0.2 - 0.08 * min(k, 1))
        d.ellipse([x - a * 0.22, y - b * 0.1, x + a * 0.22, y + b * 0.1], fill=colour)


def _draw_nose(d, ident, act, cx, cy):
    a, b = ident["a"], ident["b"]
    top, tip = cy - b * 0.05, cy + b * ident["nose_len"]
    shade = _darker(ident["skin"], 0.72)
    flare = 1 + 0.3 * max(0.0, act["nose_wrinkle"])
    w = a * 0.16 * flare * (1 - 0.3 * ident["child"])
    d.line([(cx - w * 0.4, top), (cx - w * 0.7, tip - w * 0.4)], fill=_darker(ident["skin"], 0.85), width=2)
    d.arc([cx - w, tip - w * 0.7, cx + w, tip + w * 0.5], 20, 160, fill=shade, width=3)
    for s in (-1, 1):
        d.ellipse([cx + s * w * 0.55 - w * 0.22, tip - w * 0.05, cx + s * w * 0.55 + w * 0.22, tip + w * 0.25], fill=_darker(ident["skin"], 0.5))
    k = act["nose_wrinkle"]
    if k > 0.3:  # AU9: creases across the bridge and beside the nose
        for i in range(1 + int(k * 2.5)):
            y = top + (tip - top) * (0.15 + 0.13 * i)
            d.line([(cx - w * 0.9, y), (cx - w * 0.3, y - 2), (cx + w * 0.3, y - 2), (cx + w * 0.9, y)], fill=shade, width=2)
    _draw_folds(d, ident, act, cx, cy, tip, w)


def _draw_folds(d, ident, act, cx, cy, tip, w):
    # Nasolabial folds deepen in a smile (AU12) and in disgust (AU10).
    k = max(act["lip_corner"], 0) * 0.8 + max(act["upper_lip"], 0) + 0.4 * ident["wrinkles"]
    if k < 0.3:
        return
    a, b = ident["a"], ident["b"]
    my = cy + b * ident["mouth_y"]
    mw = a * ident["mouth_w"] * 2 * 0.6
    for s in (-1, 1):
        p0 = (cx + s * w * 1.3, tip - w * 0.3)
        p2 = (cx + s * (mw + a * 0.1), my + b * 0.02)
        mid = (cx + s * (mw + a * 0.14), (p0[1] + p2[1]) / 2)
        d.line(_through(p0, mid, p2, 8), fill=_darker(ident["skin"], 0.78), width=2 if k < 0.8 else 3)


def _draw_mouth(d, ident, act, cx, cy):
    a, b = ident["a"], ident["b"]
    my = cy + b * ident["mouth_y"]
    mw = a * ident["mouth_w"] * 2 * 0.6 * (1 + 0.3 * act["lip_stretch"] + 0.25 * max(act["lip_corner"], 0) - 0.2 * max(act["lip_press"], 0) - 0.1 * max(act["jaw_drop"], 0))
    corner_up = mw * (0.7 * act["lip_corner"] - 0.2 * act["lip_stretch"])
    left, right = (cx - mw, my - corner_up), (cx + mw, my - corner_up)
    upper_y = my - mw * 0.5 * max(act["upper_lip"], 0)
    opening = mw * (1.7 * max(act["jaw_drop"], 0) + 0.35 * max(act["lip_stretch"], 0) + 0.2 * max(act["upper_lip"], 0))
    smile = mw * 0.4 * act["lip_corner"]  # a smile bends the lower lip into a U, a frown into a cap
    lower_y = my + opening + max(smile, 0) * 0.8 + min(smile, 0) * 0.5
    upper_mid_y = upper_y + min(smile, 0) * 0.6 + max(smile, 0) * 0.2
    upper = _through(left, (cx, upper_mid_y), right)
    lower = _through(left, (cx, lower_y), right)
    lip_w = max(2, int(SUPERSAMPLE * (2.2 + 1.5 * ident["mouth_w"] * 3) * (1 - 0.6 * np.clip(act["lip_press"], 0, 1))))
    if lower_y - upper_mid_y > 3:
        d.polygon(upper + lower[::-1], fill=(45, 10, 15))
        # Upper teeth show in a smile and a sneer; a fear stretch shows mostly a dark gap.
        teeth = max(act["lip_corner"], 0) + max(act["upper_lip"], 0) + 0.25 * max(act["lip_stretch"], 0)
        if teeth > 0.3:
            depth = min((lower_y - upper_mid_y) * 0.45, mw * 0.3)
            band = [(x, y + depth * (1 - ((x - cx) / mw) ** 2)) for x, y in upper]
            d.polygon(upper + band[::-1], fill=(240, 238, 225))
    d.line(upper, fill=ident["lip"], width=lip_w, joint="curve")
    d.line(lower, fill=_darker(ident["lip"], 1.05) if lip_w > 2 else ident["lip"], width=int(lip_w * 1.3), joint="curve")
    if lower_y - upper_mid_y <= 3:  # closed mouth: the dark line between the lips
        d.line(_through(left, (cx, (upper_mid_y + lower_y) / 2), right), fill=_darker(ident["lip"], 0.5), width=2)


def _draw_glasses(d, ident, cx, cy, dark: bool):
    r = ident["eye_r"] * ident["a"] * 2 * 0.55
    frame = (20, 20, 20) if dark or ident["tone"] < 3 else (200, 200, 200)
    centres = [_eye_centre(ident, cx, cy, s) for s in (-1, 1)]
    for ex, ey in centres:
        box = [ex - r * 1.6, ey - r * 1.15, ex + r * 1.6, ey + r * 1.15]
        if dark:
            d.rounded_rectangle(box, radius=r * 0.6, fill=(25, 25, 30), outline=frame, width=3)
        else:
            d.rounded_rectangle(box, radius=r * 0.6, outline=frame, width=3)
    d.line([(centres[0][0] + r * 1.6, centres[0][1]), (centres[1][0] - r * 1.6, centres[1][1])], fill=frame, width=3)


def _occlude_after_pose(img, rng, ident, kind):
    """A hand or a block in front of the (posed) face: it hides part of the expression."""
    d = ImageDraw.Draw(img)
    c = CANVAS / 2
    if kind == "hand":
        skin = _lerp(ident["skin"], (0, 0, 0), 0.05)
        x = c + rng.uniform(-0.5, 0.5) * ident["a"]
        y = c + rng.uniform(0.1, 0.7) * ident["b"]
        w, h = ident["a"] * rng.uniform(0.32, 0.45), ident["b"] * rng.uniform(0.22, 0.3)
        d.rounded_rectangle([x - w, y - h, x + w, y + h], radius=w * 0.5, fill=skin)
        for i in range(1, 4):  # faint gaps between fingers
            fx = x - w + 2 * w * i / 4
            d.line([(fx, y - h * 0.8), (fx, y - h * 0.1)], fill=_darker(skin, 0.9), width=1)
        d.rectangle([x - w * 0.55, y + h * 0.6, x + w * 0.55, y + h * 2.2], fill=skin)
    else:
        x, y = rng.uniform(0.2, 0.8, 2) * CANVAS
        w, h = rng.uniform(0.07, 0.14, 2) * CANVAS
        d.rectangle([x - w, y - h, x + w, y + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))


def _pose(layer: Image.Image, scene: dict) -> Image.Image:
    """Rotate, scale and shift the face layer (one affine map, inverse as PIL wants it)."""
    c = CANVAS / 2
    th = math.radians(scene["angle"])
    s = scene["scale"]
    tx, ty = scene["shift"]
    cos, sin = math.cos(th) / s, math.sin(th) / s
    # output (x, y) -> input: inverse rotation/scale about the centre, after removing the shift
    coeffs = (cos, sin, c - cos * (c + tx) - sin * (c + ty),
              -sin, cos, c + sin * (c + tx) - cos * (c + ty))
    return layer.transform(layer.size, Image.AFFINE, coeffs, resample=Image.BILINEAR)


def _camera(img: Image.Image, rng, scene: dict) -> bytes:
    """Lighting, grayscale, blur, noise and JPEG: what the camera and the web did to the face."""
    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)
    if scene["blur"] > 0:
        img = img.filter(ImageFilter.GaussianBlur(scene["blur"]))
    x = np.asarray(img, dtype=np.float32)
    u = np.linspace(-1, 1, IMAGE_SIZE, dtype=np.float32)
    gx, gy = np.meshgrid(u, u)
    gain = 1 + scene["light_strength"] * (np.cos(scene["light_dir"]) * gx + np.sin(scene["light_dir"]) * gy)
    x = (x - 128) * scene["contrast"] + 128 + scene["brightness"]
    x = x * gain[..., None]
    if scene["gray"]:
        x = np.repeat(x @ np.array([0.299, 0.587, 0.114], dtype=np.float32), 3).reshape(x.shape)
    x = x + rng.normal(0, scene["noise"], x.shape).astype(np.float32)
    out = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    # Fixed encoder settings: byte-identical output for the same pixels.
    out.save(buf, format="JPEG", quality=scene["quality"], subsampling=2, optimize=False, progressive=False)
    return buf.getvalue()


def render(seed: int, split: str, index: int, label: int) -> tuple[bytes, dict]:
    """Draw one face of class ``label`` and return (JPEG bytes, its parameters).

    The image depends only on (seed, split, index, label), never on the other images.
    """
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])
    drawn = int(label)
    if split != "unlabelled" and rng.random() < LABEL_NOISE:
        drawn = int(rng.choice([k for k in range(len(CLASS_NAMES)) if k != label]))
    age = _sample_age(rng, split)
    ident = _sample_identity(rng, age)
    intensity = rng.uniform(*(WEAK_INTENSITY if rng.random() < WEAK_SHARE else INTENSITY))
    acts = _sample_actions(rng, CLASS_NAMES[drawn], intensity)
    scene = _sample_scene(rng)
    bg = _background(rng)
    layer = _draw_face(ident, acts)
    if scene["occlusion"] in ("glasses", "sunglasses"):
        _draw_glasses(ImageDraw.Draw(layer), ident, CANVAS / 2, CANVAS / 2 + 4, scene["occlusion"] == "sunglasses")
    if scene["mirror"]:
        layer = layer.transpose(Image.FLIP_LEFT_RIGHT)
    posed = _pose(layer, scene)
    bg.paste(posed, (0, 0), posed)
    if scene["occlusion"] in ("hand", "block"):
        _occlude_after_pose(bg, rng, ident, scene["occlusion"])
    data = _camera(bg, rng, scene)
    meta = {"label": CLASS_NAMES[label], "drawn": CLASS_NAMES[drawn], "intensity": float(intensity),
            "age": age, "gender": ident["gender"], "race": _race(ident["tone"])}
    return data, meta


def _race(tone: float) -> int:
    # UTKFace's race field (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others), from skin tone only:
    # a stand-in so the names parse, not a claim about anyone.
    return [0, 2, 3, 4, 1, 1][int(round(tone))]


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
        is replaced, or kept as is when it was made with the same parameters; any other
        non-empty folder is refused.
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
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts = _write_set(tmp, params, progress)
        # No absolute path in the files: the same set must hash the same wherever it lies.
        summary = {"params": params, "counts": counts}
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / SYNTHETIC_MARKER).write_text(_readme(params, counts))
        _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**summary, "path": str(out), "seconds": time.perf_counter() - t0, "reused": False}


def _check_params(n_train, n_test, n_unlabelled, seed) -> dict:
    from .errors import ConfigError

    for name, value, least in (("n_train", n_train, len(CLASS_NAMES)), ("n_test", n_test, len(CLASS_NAMES)),
                               ("n_unlabelled", n_unlabelled, 0), ("seed", seed, 0)):
        if int(value) != value or value < least:
            raise ConfigError(f"{name}={value!r}: expected an integer >= {least}")
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

These faces were drawn by `fer_utils.synthetic` (generator version {params['generator_version']})
so that the pipeline runs without the research-only RAF-DB. Numbers obtained on them test the
code, not facial expression recognition; do not report them as RAF-DB results.

Regenerate with `fer synth` or
`python -c "from fer_utils.synthetic import generate; generate('<this folder>', n_train={params['n_train']}, n_test={params['n_test']}, n_unlabelled={params['n_unlabelled']}, seed={params['seed']})"`:
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
# Looking at it


def contact_sheet(root, out_png=None, per_class: int = 10, seed: int = 0, title: str | None = None) -> Path:
    """Save a figure with one labelled row per class of ``root``'s train split; return its path.

    ``out_png`` defaults to ``figures/synthetic_contact_sheet.png``. ``title`` (after "NOT
    RAF-DB:") defaults to the set's seed, sizes and generator version from its manifest, never
    its path, so a committed figure does not name a temporary folder. The figure is written to
    a temporary file and renamed, so a reader never sees half a PNG.
    """
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window (a notebook keeps its own backend)
    import matplotlib.pyplot as plt

    from . import paths
    from .atomic import temp_path_for

    root = Path(root)
    out_png = Path(out_png) if out_png is not None else Path(paths.FIGURES_DIR) / "synthetic_contact_sheet.png"
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(CLASS_NAMES), per_class, figsize=(per_class * 1.1, len(CLASS_NAMES) * 1.2),
                             squeeze=False)
    for r, c in enumerate(CLASS_NAMES):
        files = sorted((root / "class" / "train" / c).glob("*.jpg"))
        if not files:
            raise DataError(f"{root / 'class' / 'train' / c}: no images; expected a synthetic set made by generate()")
        picks = rng.choice(len(files), size=min(per_class, len(files)), replace=False)
        for k, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if k < len(picks):
                with Image.open(files[picks[k]]) as im:
                    ax.imshow(np.asarray(im.convert("RGB")))
        axes[r][0].set_ylabel(c, rotation=0, ha="right", va="center", fontsize=10)
    if title is None:
        title = _sheet_title(root)
    fig.suptitle(f"Synthetic faces (NOT RAF-DB): {title}", fontsize=9)
    fig.tight_layout()
    tmp = temp_path_for(out_png)
    try:
        fig.savefig(tmp, dpi=100, format="png")
        os.replace(tmp, out_png)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return out_png


def _sheet_title(root: Path) -> str:
    """What the set is (seed, sizes, generator version), never where it lies."""
    try:
        p = json.loads((Path(root) / MANIFEST).read_text())["params"]
    except (OSError, ValueError, KeyError):
        return Path(root).name
    return (f"seed {p['seed']}, {p['n_train']} train / {p['n_test']} test faces, "
            f"generator version {p['generator_version']}")
