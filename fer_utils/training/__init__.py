"""Training: one run = one configuration of any model, trained by one trainer into one store.

The run configuration (:mod:`.config`), how each model family is fed and scored
(:mod:`.recipes`), the trainer with its determinism and resume contract (:mod:`.trainer`), the
files of a run folder (:mod:`.rundir`), the run store ``results/runs/`` (:mod:`.store`), the
engine that trains a plan of runs here or on Dask workers and GPUs (:mod:`.engine`), and the
Keras backend's settings (:mod:`.backend`).

May import: models, data and the top-level leaves.
"""
