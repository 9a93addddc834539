#!/bin/bash
# Issue 26 item 4 for the recipe that ships now (RAF-DB and FER2013, equal mix, 60 epochs of 22,088
# faces): each seed and their ensemble (the mean of the three models' probabilities), plain and with
# flip TTA, on RAF-DB test and FER2013 PublicTest, into benchmarks/mixture/seeds60/scores/ (fer
# evaluate --json) and .../compare/ (seed 0 against the ensemble, face for face, McNemar), by
# benchmarks/seeds/compare.sh. Resumable. Seeds 1 and 2 train with LONG=1 LONG_SEEDS=1,2 bash
# benchmarks/mixture/train.sh; same FER_HOME and FER_DATA; from the repository root.
# Seed 0: the committed files were made with S0=shipped while seed 0 was the shipped model (its
# float16 file, as users have it; seed0-card.json is its card); by default it is named by its run id
# (float32), so that the script means the same model after another one ships.
set -euo pipefail
export S0=${S0:-resnet-e60-b128-s0-holdout-c3c700bda5b0}
export S1=resnet-e60-b128-s1-holdout-9dd27b45d8e9
export S2=resnet-e60-b128-s2-holdout-4521735db268
export OUT=${OUT:-benchmarks/mixture/seeds60}
exec bash benchmarks/seeds/compare.sh
