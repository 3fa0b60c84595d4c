#!/usr/bin/env bash
# Issue 29's decoder student: VitTrack (OpenCV model zoo) copied into MixFormerV2, its blocks
# untouched, four prediction tokens reading the box through two layers of 4-head cross-attention,
# each with an MLP, after the final norm (preset vitstem-decoder). As train/recipes/vitstem_readout.sh,
# with 48,000 cached pairs instead of 16,000 and a cosine rate:
#   1. dense-to-sparse on cached features (the frozen teacher's search tokens and edge
#      distributions; the held-out list of vitstem_dense_to_sparse.yaml applies), the readout fitted
#      on them and grafted into the student; the score stage;
#   2. 8 epochs end to end; the epoch is chosen on the validation split (EPOCH, 4 on 2026-12-07);
#   3. deep-to-shallow, 3 -> 2 blocks, taught by the 3-block student;
#   4. each depth exported, fp32 and INT8, each with its LOST rule chosen on the validation split
#      (train/recipes/student_files.sh).
# About 60 minutes on 2 CPU cores. The files land in runs/vitstem-decoder/decoder{3,2}[-int8].onnx.
# Numbers and the ship decision:
# docs/benchmarks/2026-12-07-vitstem-student.md.
set -euo pipefail
SHARED=${SHARED:-../shared}
EPOCH=${EPOCH:-4}
CFG=train/configs/vitstem_dense_to_sparse.yaml
OUT=runs/vitstem-decoder
mkdir -p "$OUT"
python -m train.distill.cached_readout cache --config "$CFG" --pairs 16000 --seed 11 --out "$OUT/train11.pt"
python -m train.distill.cached_readout cache --config "$CFG" --pairs 32000 --seed 13 --out "$OUT/train13.pt"
python -m train.distill.cached_readout cache --config "$CFG" --pairs 3000 --seed 7 --out "$OUT/held.pt"
python -m train.distill.cached_readout fit --train "$OUT/train11.pt,$OUT/train13.pt" --held "$OUT/held.pt" \
  --heads 4 --layers 2 --mlp-ratio 4 --layer last --steps 12000 --cosine --save "$OUT/readout.pt"
python -m train.distill.cached_readout graft --config "$CFG" --preset vitstem-decoder --readout "$OUT/readout.pt" \
  --out "$OUT/student.pth"
edge-track train train/configs/vitstem_decoder_score.yaml              # runs/vitstem-decoder-score/
edge-track train train/configs/vitstem_decoder_finetune.yaml           # runs/vitstem-decoder-ft/epochN
# (choose EPOCH: edge-track eval --sequences $SHARED/data/validation --starts 2 on each epoch's export)
cp "runs/vitstem-decoder-ft/epoch$EPOCH.pth.tar" runs/vitstem-decoder-ft/chosen.pth.tar
edge-track train train/configs/vitstem_decoder_deep_to_shallow.yaml    # runs/vitstem-decoder-2blocks/
SHARED="$SHARED" bash train/recipes/student_files.sh runs/vitstem-decoder-ft/chosen.pth.tar "$OUT" decoder3
SHARED="$SHARED" bash train/recipes/student_files.sh runs/vitstem-decoder-2blocks/final.pth.tar "$OUT" decoder2
