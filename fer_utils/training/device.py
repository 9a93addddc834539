"""The trainer's fast path under JAX: a whole epoch in one jitted call on the device.

``train_run(..., jit_epochs=True)`` (``fer train/run/tables --jit-epochs``) trains each epoch as
one ``jax.lax.scan`` over its full batches (plus one call for a last, smaller batch), with the
faces held in device memory as uint8: the gather, the family's batch mixing (MixUp/CutMix from
the SAME per-batch draws the ``fit`` path makes, :func:`fer_utils.training.recipes.mix_draws`),
and Keras' own ``model.train_step`` (forward with the augmentation layer, the compiled loss
and metrics, backward, the optimizer and its schedule), so the host only launches epochs.

Everything else is the trainer's: the epoch's order and every random stream are re-derived
from ``(seed, epoch)`` before the call (:func:`fer_utils.training.trainer.epoch_seed`,
:func:`~fer_utils.training.trainer.reseed`), the variables are written back into the Keras
model after it, the validation is ``model.evaluate`` on the same batches ``fit`` validates
on, and the epoch ends in the same three steps; so the run's files, its checkpoint and its
resume contract are the ``fit`` path's. The two paths see the same batches; their numbers
agree to float rounding, not bit for bit (XLA fuses differently), so a run is trained by one
path or the other throughout (the run's ``trained_with`` says which).

It is for accelerators. On a 2-core CPU it is about 10x SLOWER than ``fit`` (XLA's CPU backend
runs the scanned convolutions far slower than its per-step ones: 24 against 217-305 images/s,
``python benchmarks/bench_device.py --batches 4 --image-size 32``, AMD EPYC avx2/avx512f), so it
is off by default; its speed on a GPU is still to be measured with the same benchmark.
"""

from __future__ import annotations

import numpy as np

from fer_utils.errors import ConfigError


def check_available() -> None:
    """The fast path needs the JAX backend (one-line ConfigError otherwise)."""
    import keras

    if keras.backend.backend() != "jax":
        raise ConfigError(f"--jit-epochs: needs the JAX backend (this process runs {keras.backend.backend()}); "
                          f"set KERAS_BACKEND=jax (a GPU machine's), or leave --jit-epochs out")


class DeviceEpochs:
    """One run's device state: its training faces on the device, and the jitted epoch."""

    def __init__(self, model, x, y, weights, num_classes: int, batch_size: int, mix_prob: float):
        import jax.numpy as jnp

        check_available()
        self.model, self.k, self.batch, self.mix_prob = model, num_classes, int(batch_size), float(mix_prob)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y, jnp.int32)
        self.w = None if weights is None else jnp.asarray(weights, jnp.float32)
        self._scan = None
        self._rest = None  # the last, smaller batch's step: its shape is the same every epoch, so it compiles once

    # -- one batch, as the fit path feeds it ------------------------------------------------
    def _batch(self, idx, draw):
        import jax.numpy as jnp

        from fer_utils.models.resnet import mix_batch

        xb, yi = self.x[idx], self.y[idx]
        yb = jnp.eye(self.k, dtype=jnp.float32)[yi]
        if self.w is None:
            return xb, yb
        xb = xb.astype(jnp.float32)
        wb = self.w[yi]
        if draw is not None:
            u, cut, lam_cut, lam_mix, cy, cx, perm = draw
            lam = jnp.where(cut, lam_cut, lam_mix).astype(jnp.float32)
            xm, ym, lam_eff = mix_batch(xb, yb, perm, lam, cut, cy.astype(jnp.float32), cx.astype(jnp.float32))
            on = u < self.mix_prob
            xb, yb = jnp.where(on, xm, xb), jnp.where(on, ym, yb)
            wb = jnp.where(on, lam_eff * wb + (1 - lam_eff) * wb[perm], wb)
        return xb, yb, wb

    def _step(self, state, idx, draw):
        logs, state = self.model.train_step(state, self._batch(idx, draw))
        return state

    def _compiled_scan(self):
        import jax

        if self._scan is None:
            def body(state, inp):
                idx, draw = inp
                return self._step(state, idx, draw if self.w is not None else None), None

            self._scan = jax.jit(lambda state, idx, draws: jax.lax.scan(body, state, (idx, draws))[0])
        return self._scan

    def epoch(self, order: np.ndarray, draws=None) -> dict:
        """Train one epoch on the faces in ``order`` (batches of ``batch_size``, the last one
        smaller), mixing with ``draws`` (one per batch, :func:`~fer_utils.training.recipes.mix_draws`;
        None: no mixing, no weights); write the variables back into the model; return its
        training logs (loss, accuracy)."""
        import jax
        import jax.numpy as jnp

        model, b = self.model, self.batch
        model.reset_metrics()
        state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
                 [v.value for v in model.optimizer.variables], [v.value for v in model.metrics_variables])
        full = len(order) // b
        if full:
            idx = jnp.asarray(np.asarray(order[: full * b]).reshape(full, b))
            inputs = _stack(draws[:full], b) if draws is not None else jnp.zeros((full,), jnp.float32)
            state = self._compiled_scan()(state, idx, inputs)
        rest = np.asarray(order[full * b :])
        if len(rest):
            one = None
            if draws is not None and len(rest) > 1:
                draw = draws[full]
                perm = draw[6][draw[6] < len(rest)]
                one = tuple(jnp.asarray(v) for v in (*draw[:6], perm))
            if self._rest is None:
                self._rest = jax.jit(self._step)
            state = self._rest(state, jnp.asarray(rest), one)
        for group, values in zip((model.trainable_variables, model.non_trainable_variables,
                                  model.optimizer.variables, model.metrics_variables), state):
            for ref, v in zip(group, values):
                ref.assign(jnp.copy(v))  # a copy: the next call may donate these buffers
        return {k: float(v) for k, v in model.get_metrics_result().items()}


def _stack(draws, batch):
    """The per-batch mixing draws as arrays with a leading batch axis (the scan's inputs)."""
    import jax.numpy as jnp

    cols = list(zip(*draws)) if draws else [[] for _ in range(7)]
    u, cut, lam_cut, lam_mix, cy, cx, perm = cols
    return (jnp.asarray(np.asarray(u, np.float32)), jnp.asarray(np.asarray(cut, bool)),
            jnp.asarray(np.asarray(lam_cut, np.float32)), jnp.asarray(np.asarray(lam_mix, np.float32)),
            jnp.asarray(np.asarray(cy, np.float32)), jnp.asarray(np.asarray(cx, np.float32)),
            jnp.asarray(np.asarray(perm, np.int32).reshape(len(draws), batch)))


def prepare(model, val_data) -> None:
    """Build what ``fit`` builds on its first call (the compiled metrics, the optimizer's
    variables) without taking a step: one evaluation of the first validation batch."""
    first = val_data[0]
    model.evaluate(x=first[0], y=first[1], sample_weight=first[2] if len(first) > 2 else None, verbose=0)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


