"""The report's augmentation, ``ImageDataGenerator(rescale=1/255, shear_range=0.2,
zoom_range=0.2, horizontal_flip=True)``, as one Keras 3 layer inside the model.

It runs on the fly in the training step only (``training=True``); at inference the layer is
the identity, so ``model.predict`` sees the same rescaled pixels the report's ``test_datagen``
gave. Written with ``keras.ops`` only, so it runs under TensorFlow and JAX alike.

Legacy semantics reproduced (``keras.src.legacy.preprocessing.image``):

* ``shear_range=0.2`` is an angle in DEGREES, drawn uniformly from [-0.2, 0.2]. (Keras 3's
  ``RandomShear`` takes a fraction of the image instead; 0.2 there would be ~100x stronger.)
* ``zoom_range=0.2`` draws INDEPENDENT x and y factors from [0.8, 1.2]; a factor above 1 maps
  the output onto a larger input area, i.e. zooms OUT (as in the legacy code).
* The transform is centred at ((h-1)/2, (w-1)/2), composed as shear @ zoom, sampled with
  bilinear interpolation (scipy ``order=1``) and ``fill_mode='nearest'``.
* The horizontal flip (probability 0.5) is applied after the affine transform; we fold it into
  the same matrix, which is exact because a flip maps pixel centres onto pixel centres.

Random draws, the same on every backend. ``keras.random`` draws with each backend's own
generator (TensorFlow's stateless Philox, JAX's threefry), so one seed gives unrelated
augmentations under TensorFlow and JAX. The layer draws its uniforms instead from a counter-based
integer hash (:func:`uniform_bits`, uint32 xor/shift/multiply, bit-identical in NumPy,
TensorFlow and JAX) of (stream seed, call counter, sample, parameter); the stream seed and the
counter live in the layer's ``SeedGenerator`` state, so ``reseed`` works as before.

Remaining differences, measured by ``tests/test_augment.py``: the legacy generator draws its
random numbers with NumPy's global RNG, so the same seed does not give the same draws (the
distributions are the same). Resampling is TensorFlow's ``ImageProjectiveTransformV3`` (or JAX's
``map_coordinates``) instead of scipy's: on identical parameters they agree to within float
rounding in the interior.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


_MIX = (0x7FEB352D, 0x846CA68B)  # "lowbias32" constants (C. Wellons' hash prospector)


def _mix(x):
    """A uint32 -> uint32 bijective hash, exact (wrapping) arithmetic on every backend."""
    x = ops.bitwise_xor(x, ops.right_shift(x, 16))
    x = ops.multiply(x, ops.convert_to_tensor(np.uint32(_MIX[0])))
    x = ops.bitwise_xor(x, ops.right_shift(x, 15))
    x = ops.multiply(x, ops.convert_to_tensor(np.uint32(_MIX[1])))
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def uniform_bits(seed, counter, n):
    """``n`` uniforms in [0, 1) as float32 multiples of 2**-24, a pure function of the integers
    ``(seed, counter)``: the same numbers under NumPy, TensorFlow and JAX."""
    u32 = lambda v: ops.cast(v, "uint32")
    key = _mix(ops.bitwise_xor(_mix(ops.bitwise_xor(u32(seed), u32(0x9E3779B9))), u32(counter)))
    idx = u32(ops.arange(n, dtype="int32"))
    bits = _mix(ops.bitwise_xor(_mix(ops.add(idx, u32(0x85EBCA6B))), key))
    return ops.cast(ops.right_shift(bits, 8), "float32") * (2.0**-24)


@keras.saving.register_keras_serializable(package="fer_utils")
class ReportAugmentation(keras.layers.Layer):
    """Random shear (degrees), independent x/y zoom and horizontal flip, in training only.

    Expects float images (B, H, W, C). ``reseed(seed)`` restarts the random stream, which is
    how the trainer makes every epoch's augmentation depend only on (seed, epoch).
    """

    def __init__(self, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.shear_range = float(shear_range)
        if isinstance(zoom_range, (int, float)):
            zoom_range = (1.0 - zoom_range, 1.0 + zoom_range)
        self.zoom_range = (float(zoom_range[0]), float(zoom_range[1]))
        self.horizontal_flip = bool(horizontal_flip)
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed if seed is not None else 1337)
        self.supports_masking = False

    def reseed(self, seed: int) -> None:
        """Restart the random stream at ``seed`` (an int that fits in 31 bits)."""
        self.seed_generator.state.assign(ops.convert_to_tensor([int(seed) & 0x7FFFFFFF, 0], dtype=self.seed_generator.state.dtype))

    def transform_matrix(self, batch, height, width, shear_deg, zx, zy, flip):
        """Projective transforms [a0, a1, a2, b0, b1, b2, 0, 0] mapping output (x, y) to input.

        x is the column, y the row. Mirrors ``apply_affine_transform`` + ``flip_axis``.
        """
        s = shear_deg * (math.pi / 180.0)
        # legacy: o_x = h/2 - 0.5 is used for x and o_y = w/2 - 0.5 for y (equal for squares)
        cx = height / 2.0 - 0.5
        cy = width / 2.0 - 0.5
        a0 = zx
        a1 = -ops.sin(s) * zy
        b0 = ops.zeros_like(zx)
        b1 = ops.cos(s) * zy
        a2 = cx - (a0 * cx + a1 * cy)
        b2 = cy - (b0 * cx + b1 * cy)
        # flip after the affine map: input = A(w-1-x, y)
        sign = 1.0 - 2.0 * flip
        a2 = a2 + flip * a0 * (width - 1)
        b2 = b2 + flip * b0 * (width - 1)
        a0 = a0 * sign
        b0 = b0 * sign
        zeros = ops.zeros_like(zx)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        batch = shape[0]
        height, width = inputs.shape[1], inputs.shape[2]
        state = self.seed_generator.next()  # (stream seed, call counter); counts the calls
        u = ops.reshape(uniform_bits(state[0], state[1], batch * 4), (batch, 4))
        shear = self.shear_range * (2.0 * u[:, 0] - 1.0)
        lo, hi = self.zoom_range
        zx, zy = lo + (hi - lo) * u[:, 1], lo + (hi - lo) * u[:, 2]
        if self.horizontal_flip:
            flip = ops.cast(u[:, 3] < 0.5, "float32")
        else:
            flip = ops.zeros((batch,), "float32")
        matrix = self.transform_matrix(batch, height, width, shear, zx, zy, flip)
        return ops.image.affine_transform(
            inputs, matrix, interpolation="bilinear", fill_mode=self.fill_mode, data_format="channels_last"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            shear_range=self.shear_range,
            zoom_range=list(self.zoom_range),
            horizontal_flip=self.horizontal_flip,
            fill_mode=self.fill_mode,
            seed=self.seed,
        )
        return cfg
