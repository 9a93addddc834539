#!/bin/bash
# Issue 26 item 4: each seed of the shipped (mixture) recipe and their ensemble (the mean of the
# three models' probabilities), plain and with flip TTA, on RAF-DB test and FER2013 PublicTest,
# into benchmarks/mixture/seeds/scores/ (fer evaluate --json) and .../compare/ (seed 0 against the
# ensemble, face for face, McNemar), by benchmarks/seeds/compare.sh. Resumable. The seeds train
# with SEEDS="1 2" bash benchmarks/mixture/train.sh; same FER_HOME and FER_DATA; from the repository root.
# Seed 0: the committed files were made with S0=shipped while seed 0 was the shipped model (its
# float16 file, as users have it); by default it is named by its run id (float32).
set -euo pipefail
export S0=${S0:-resnet-e40-b128-s0-holdout-b1ea4f4cc4c4}
export S1=resnet-e40-b128-s1-holdout-4ee2a6212b48
export S2=resnet-e40-b128-s2-holdout-410716aeda74
export OUT=${OUT:-benchmarks/mixture/seeds}
exec bash benchmarks/seeds/compare.sh
