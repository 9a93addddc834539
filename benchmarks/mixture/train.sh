#!/bin/bash
# Issue 26 item 2: RAF-DB only (A), FER2013 only (B) and both with an equal mix (C), at equal
# training cost: 10 epochs of 11,044 faces each (RAF-DB's train split less its 10% holdout).
# Run from the repository root: FER_DATA=/path/to/data FER_HOME=/somewhere bash benchmarks/mixture/train.sh
# CURVE=1 adds the cost curve's runs below; CURVE=only trains those alone; SEEDS="1 2" alone trains
# only the mixture recipe's other seeds (with CURVE=1 as well, everything); RES=1 adds the 96 px point and LONG=1
# the 60-epoch point and WIDE=1 the cheap point 1.5 times as wide at the end.
set -euo pipefail
FER=${FER:-.venv/bin/fer}
D=${FER_DATA:-../shared/data}
common="--model resnet --image-size 64 --batch-size 128 --seed 0 --selection holdout --epochs 10 --epoch-faces 11044"
if [ "${CURVE:-0}" != only ] && [ -z "${LONG_SEEDS:-}" ] && { [ -z "${SEEDS:-}" ] || [ -n "${CURVE:-}" ]; }; then
  $FER train --data $D/raf-basic.zip $common
  $FER train --data $D/fer2013.zip $common
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal $common
fi

# The cost curve's next point: RAF-DB only and the mixture at twice the cost (20 epochs of 11,044 faces).
if [ "${CURVE:-0}" != 0 ]; then
  curve="--model resnet --image-size 64 --batch-size 128 --seed 0 --selection holdout --epoch-faces 11044"
  $FER train --data $D/raf-basic.zip $curve --epochs 20
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal $curve --epochs 20
  # and as many RAF-DB faces as the RAF-DB-only recipe's model saw (40 epochs of 11,044), with as many FER2013
  # faces beside them: the mixture at 40 epochs of 22,088 faces (eight times the first runs' cost)
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal ${curve/11044/22088} --epochs 40
fi

# Seeds of the mixture recipe (SEEDS="1 2", 40 epochs): seed 0 is the run above (shipped until the 60-epoch run replaced it); the others beside it
# (one after another here; add --workers N or --gpus all to hand them to Dask workers).
if [ -n "${SEEDS:-}" ]; then
  seeds=$(echo $SEEDS | tr ' ' ,)
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal --model resnet --image-size 64 --batch-size 128 \
    --selection holdout --epoch-faces 22088 --epochs 40 --seeds "$seeds"
fi

# The cost curve's next point (LONG=1): the mixture recipe, seed 0, at 60 epochs of 22,088 faces (the shipped model's run)
# (1.5 times its cost: the most this CPU trains in about 2 hours when it runs at full speed).
# LONG=1 LONG_SEEDS=1,2 trains only the shipped recipe's other seeds (one after another; about 2 hours each here).
if [ "${LONG:-0}" != 0 ]; then
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal --model resnet --image-size 64 --batch-size 128 \
    --selection holdout --epoch-faces 22088 --epochs 60 --seeds "${LONG_SEEDS:-0}"
fi

# Resolution (RES=1): the cheap point of the mixture again at 96 px instead of 64 (2.25 times the
# work per face; at about the cost of the 64 px mixture's 20-epoch point).
if [ "${RES:-0}" != 0 ]; then
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal --model resnet --image-size 96 --batch-size 128 \
    --seed 0 --selection holdout --epochs 10 --epoch-faces 11044
fi

# Width (WIDE=1): the cheap point of the mixture again with 1.5 times the channels (preset resnet-wide:
# 2.2 times the work per face, as the 96 px point; params 2.7M).
if [ "${WIDE:-0}" != 0 ]; then
  $FER train --data $D/raf-basic.zip --data $D/fer2013.zip --mix equal --preset resnet-wide --image-size 64 --batch-size 128 \
    --seed 0 --selection holdout --epochs 10 --epoch-faces 11044
fi
