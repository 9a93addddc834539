"""Sampling one synthetic face: its identity (age, skin tone, hair, glasses), its FACS-like action
units for the expression drawn, and its scene (pose, light, occlusion, camera). Drawn by
:mod:`fer_utils.data.faces_draw`; every draw comes from the face's own generator."""

from __future__ import annotations

import numpy as np

#: Drawn at this multiple of the image size (fer_utils.data.faces_draw.SUPERSAMPLE).
SUPERSAMPLE = 2
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


def lerp(c0, c1, t):
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c0, c1))


def sample_age(rng, split: str) -> int:
    if split == "unlabelled":
        # A UTKFace-like spread: children to the old, most in between.
        return int(np.clip(rng.choice([rng.integers(1, 13), rng.integers(13, 90)], p=[0.2, 0.8]), 1, 90))
    return int(rng.integers(16, 80))


def sample_identity(rng, age: int) -> dict:
    child = max(0.0, (13 - age) / 12)  # 1 for a baby, 0 from 13 on
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    lo = int(tone)
    skin = lerp(SKIN_TONES[lo], SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)], tone - lo)
    gender = int(rng.integers(0, 2))
    a = rng.uniform(68, 75) * (1 + 0.04 * child)  # half width of the face, in canvas pixels
    grey = np.clip((age - 45) / 35, 0, 1) * rng.uniform(0.3, 1)
    hair = lerp(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], (200, 200, 200), grey)
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
        "lip": lerp(skin, (150, 40, 55), rng.uniform(0.5, 0.75)),
        "wrinkles": float(np.clip((age - 40) / 40, 0, 1)),
        "clothes": tuple(int(v) for v in rng.integers(20, 235, 3)),
    }


def sample_actions(rng, expression: str, intensity: float) -> dict:
    proto = PROTOTYPES[expression]
    # Small random activations everywhere: faces are never perfectly still.
    acts = {au: float(rng.normal(0, 0.06)) for au in AUS}
    for au, v in proto.items():
        acts[au] += intensity * v * rng.uniform(0.8, 1.2)
    return acts


def sample_scene(rng) -> dict:
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


def race(tone: float) -> int:
    # UTKFace's race field (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others), from skin tone only:
    # a stand-in so the names parse, not a claim about anyone.
    return [0, 2, 3, 4, 1, 1][int(round(tone))]
