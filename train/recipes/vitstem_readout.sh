#!/usr/bin/env bash
# Issue 29's student that tracks: VitTrack (OpenCV model zoo) copied into MixFormerV2, its blocks
# untouched, four prediction tokens reading the box in one 4-head cross-attention after the final
# norm (preset vitstem-readout). Not shipped: its validation band is below its teacher's
# (docs/benchmarks/2026-12-07-vitstem-student.md).
#   1. dense-to-sparse on cached features: the frozen teacher's search tokens and edge
#      distributions for 16,000 training pairs (the held-out list of vitstem_dense_to_sparse.yaml
#      applies), the readout fitted on them and grafted into the student; the score stage;
#   2. 8 epochs end to end; the epoch is chosen on the validation split (EPOCH, 5 on 2026-12-07);
#   3. deep-to-shallow, 3 -> 2 blocks, taught by the 3-block student;
#   4. each depth exported, fp32 and INT8, each with its LOST rule chosen on the validation split
#      (train/recipes/student_files.sh).
# About 90 minutes on 2 CPU cores; the files land in runs/vitstem-readout/readout{3,2}[-int8].onnx,
# where train/recipes/measure_trackers.sh picks them up.
set -euo pipefail
SHARED=${SHARED:-../shared}
EPOCH=${EPOCH:-5}
CFG=train/configs/vitstem_dense_to_sparse.yaml
OUT=runs/vitstem-readout
mkdir -p "$OUT"
python -m train.distill.cached_readout cache --config "$CFG" --pairs 16000 --seed 11 --out "$OUT/train.pt"
python -m train.distill.cached_readout cache --config "$CFG" --pairs 3000 --seed 7 --out "$OUT/held.pt"
python -m train.distill.cached_readout fit --train "$OUT/train.pt" --held "$OUT/held.pt" --heads 4 --layer last \
  --steps 5000 --save "$OUT/readout.pt"
python -m train.distill.cached_readout graft --config "$CFG" --readout "$OUT/readout.pt" --out "$OUT/student.pth"
edge-track train train/configs/vitstem_readout_score.yaml              # runs/vitstem-readout-score/
edge-track train train/configs/vitstem_readout_finetune.yaml           # runs/vitstem-readout-ft/epochN
# (choose EPOCH: edge-track eval --sequences $SHARED/data/validation --starts 2 on each epoch's export)
cp "runs/vitstem-readout-ft/epoch$EPOCH.pth.tar" runs/vitstem-readout-ft/chosen.pth.tar
edge-track train train/configs/vitstem_readout_deep_to_shallow.yaml    # runs/vitstem-readout-2blocks/
SHARED="$SHARED" bash train/recipes/student_files.sh runs/vitstem-readout-ft/chosen.pth.tar "$OUT" readout3
SHARED="$SHARED" bash train/recipes/student_files.sh runs/vitstem-readout-2blocks/final.pth.tar "$OUT" readout2
