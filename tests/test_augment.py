"""The augmentation layer against the legacy ImageDataGenerator it reproduces.

Two checks: (1) on fixed parameters, our transform equals ``apply_affine_transform`` (+ flip)
on a grid image; (2) statistically, over many random draws, the mean augmented image of our
layer and of the legacy generator agree, and the layer's draws stay within the legacy ranges.
"""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from fer_utils.models.augment import ReportAugmentation

legacy = pytest.importorskip("keras.src.legacy.preprocessing.image")


def grid_image(size=32):
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([(x % 8 < 4) * 1.0, (y % 8 < 4) * 1.0, (x + y) / (2.0 * size)], axis=-1)
    return img.astype("float32")


@pytest.mark.parametrize(
    "shear,zx,zy,flip",
    [(0.2, 1.0, 1.0, 0), (15.0, 0.8, 1.2, 0), (-10.0, 1.15, 0.85, 1), (0.0, 1.2, 1.2, 1)],
)
def test_transform_matches_legacy_on_fixed_parameters(shear, zx, zy, flip):
    img = grid_image()
    ref = legacy.apply_affine_transform(img, shear=shear, zx=zx, zy=zy, row_axis=0, col_axis=1, channel_axis=2, fill_mode="nearest", order=1)
    if flip:
        ref = ref[:, ::-1, :]
    layer = ReportAugmentation()
    f32 = lambda v: ops.convert_to_tensor(np.array([v], "float32"))
    m = layer.transform_matrix(1, 32, 32, f32(shear), f32(zx), f32(zy), f32(float(flip)))
    ours = np.asarray(ops.image.affine_transform(img[None], m, interpolation="bilinear", fill_mode="nearest"))[0]
    # Same sampling points: agree to float rounding (the border uses the same 'nearest' fill).
    assert np.abs(ours - ref).max() < 1e-4


def test_random_draws_match_legacy_statistically():
    img = grid_image()
    n = 400
    gen = legacy.ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    np.random.seed(0)
    ref = np.stack([gen.random_transform(img) for _ in range(n)])
    layer = ReportAugmentation(seed=0)
    ours = np.asarray(layer(np.repeat(img[None], n, axis=0), training=True))
    # Means over the draws agree (a wrong zoom or a shear in radians would move them far).
    assert np.abs(ours.mean(0) - ref.mean(0)).mean() < 0.02
    assert abs(ours.std() - ref.std()) < 0.01
    # Roughly half the images are flipped: compare against the unflipped/flipped originals.
    flipped = np.mean([np.abs(o - img[:, ::-1]).mean() < np.abs(o - img).mean() for o in ours])
    assert 0.4 < flipped < 0.6


def test_reseed_replays_the_same_draws():
    layer = ReportAugmentation(seed=1)
    x = np.repeat(grid_image()[None], 8, axis=0)
    layer.reseed(42)
    a = np.asarray(layer(x, training=True))
    b = np.asarray(layer(x, training=True))
    layer.reseed(42)
    c = np.asarray(layer(x, training=True))
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_identity_at_inference():
    x = grid_image()[None]
    np.testing.assert_array_equal(np.asarray(ReportAugmentation()(x, training=False)), x)
