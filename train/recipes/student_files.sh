#!/usr/bin/env bash
# The files of one trained student at one depth, as the students' recipes (vitstem_readout.sh,
# vitstem_decoder.sh) ship them: exported, quantised (static INT8), and each precision with its LOST
# rule chosen on the validation split (INT8 moves the scores a little).
#   bash train/recipes/student_files.sh CHECKPOINT OUT_DIR NAME   -> OUT_DIR/NAME.onnx, OUT_DIR/NAME-int8.onnx
set -euo pipefail
SHARED=${SHARED:-../shared}
CKPT=$1 OUT=$2 NAME=$3
edge-track export --checkpoint "$CKPT" --output "$OUT/plain-$NAME.onnx"
edge-track quantize --model "$OUT/plain-$NAME.onnx" --output "$OUT/plain-$NAME-int8.onnx" \
  --calib "$SHARED/data/train/OTB_Biker"
for kind in "" -int8; do
  python -m train.measure.lost_rule "$OUT/plain-$NAME$kind.onnx" --validation "$SHARED/data/validation" \
    --output "$OUT/$NAME$kind.onnx"
done
