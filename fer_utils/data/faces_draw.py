"""Drawing one synthetic face: identity, FACS-like action units, scene, camera (see
the docstring of :mod:`fer_utils.data.synthetic` for what is drawn and why).

An image depends only on (seed, split, index, label): :func:`render` draws it from its own
generator ``np.random.default_rng([seed, split_id, index])`` and encodes it with fixed JPEG
settings, so the same arguments give the same bytes.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fer_utils.data.faces_cues import (  # SUPERSAMPLE: draw at 2x and downsample, smooth edges without antialiasing
    SUPERSAMPLE,
    lerp,
    sample_actions,
    sample_age,
    sample_identity,
    sample_scene,
    race,
)
from fer_utils.data.layouts import CLASS_NAMES

#: Bump when the drawing changes, so a rerun over an older set regenerates it.
GENERATOR_VERSION = 2  # 2: stronger, larger expression cues for the few-step demo profile
IMAGE_SIZE = 100  # RAF-DB's aligned crops are 100x100
CANVAS = IMAGE_SIZE * SUPERSAMPLE
SPLIT_IDS = {"train": 0, "test": 1, "unlabelled": 2}


#: Range of expression intensity; the lower end sets how ambiguous faces get. Most faces draw
#: from :data:`INTENSITY`, a share :data:`WEAK_SHARE` from the weaker :data:`WEAK_INTENSITY`.
INTENSITY = (0.8, 1.0)
WEAK_INTENSITY = (0.35, 0.8)
WEAK_SHARE = 0.1
LABEL_NOISE = 0.03

# --------------------------------------------------------------------------------------------
# Drawing: background, the face on its own layer, pose, occlusions, camera.


def _background(rng) -> Image.Image:
    # Muted colours: half-way between a random colour and its grey.
    grey = int(rng.integers(70, 190))
    base = lerp((grey, grey, grey), rng.integers(30, 230, 3), 0.35)
    img = Image.new("RGB", (CANVAS, CANVAS), base)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.integers(-40, CANVAS, 2)
        w, h = rng.integers(20, 140, 2)
        # Clutter mostly blended into the base colour: visible, but much fainter than the face.
        colour = lerp(base, rng.integers(0, 256, 3), 0.22)
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
        d.chord([cx - a, cy - b, cx + a, cy + b], 200, 340, fill=lerp(ident["hair"], ident["skin"], 0.6))
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
    colour = lerp(ident["hair"], (15, 10, 8), 0.6)
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
    colour = lerp(ident["skin"], (235, 90, 100), min(0.5, 0.45 * k))
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
        skin = lerp(ident["skin"], (0, 0, 0), 0.05)
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
    age = sample_age(rng, split)
    ident = sample_identity(rng, age)
    intensity = rng.uniform(*(WEAK_INTENSITY if rng.random() < WEAK_SHARE else INTENSITY))
    acts = sample_actions(rng, CLASS_NAMES[drawn], intensity)
    scene = sample_scene(rng)
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
            "age": age, "gender": ident["gender"], "race": race(ident["tone"])}
    return data, meta
