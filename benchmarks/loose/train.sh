#!/bin/bash
# Issue 26: does training on loosely framed faces (preset resnet-loose: a quarter of the faces
# shrunk to 55-90% of the side) make the model hold up on faces cut wide around the head, at no
# cost on faces as given? Two runs at the cheap point of the mixture's cost curve (RAF-DB and
# FER2013, equal mix, 10 epochs of 11,044 faces, seed 0): the recipe as it is (the run of
# benchmarks/mixture/train.sh's "both, equal mix") and the same with loose framing on.
# Run from the repository root: FER_DATA=/path/to/data FER_HOME=/somewhere bash benchmarks/loose/train.sh
set -euo pipefail
FER=${FER:-.venv/bin/fer}
D=${FER_DATA:-../shared/data}
common="--data $D/raf-basic.zip --data $D/fer2013.zip --mix equal --image-size 64 --batch-size 128 --seed 0 --selection holdout --epochs 10 --epoch-faces 11044"
$FER train --model resnet $common
$FER train --preset resnet-loose $common
