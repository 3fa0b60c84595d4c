#!/usr/bin/env bash
# One measuring run for the tracker catalog (edge/data/trackers.json): every bundled tracker and the
# peers, on one CPU, the validation split as its README says (two starts, band over 4 noise runs)
# and the dev set, then one bench run for frame times; train.measure.record_results writes the numbers the
# default rule reads. Run it on a quiet machine: CPU="the CPU, in words" train/recipes/measure_trackers.sh
# Parts: STEPS="eval bench record" (default all).
set -euo pipefail
SHARED=${SHARED:-../shared}
OUT=${OUT:-runs/measure}
STEPS=${STEPS:-eval bench record}
VAL="$SHARED/data/validation"
DEV="$SHARED/data/sequences"
mkdir -p "$OUT"

# name | eval options
TRACKERS=(
  "nanotrack-v3|--model nanotrack-v3"
  "mixformerv2-nanostem224|--model mixformerv2-nanostem224"
)
PEERS=(
  "NanoTrack V2, OpenCV TrackerNano|--tracker nanotrack --nanotrack-dir $SHARED/models/opencv"
  "NanoTrack V2, authors' loop|--model $SHARED/models/opencv"
  "VitTrack, OpenCV TrackerVit|--tracker vittrack --vittrack-model $SHARED/models/vittrack/vitTracker.onnx"
  "VitTrack, own loop (RGB input)|--tracker vittrack-rgb --vittrack-model $SHARED/models/vittrack/vitTracker.onnx"
  "CSRT, OpenCV|--tracker csrt"
)
# The MixFormerV2 students of issue 29 (trained here, not shipped; train/recipes/vitstem_readout.sh
# and vitstem_decoder.sh leave them under $RUNS), measured in the same run where their files are
# present (when, run in parts with STEPS, all parts see the same files). Only the model card's table
# shows them.
RUNS=${RUNS:-runs}
STUDENT_FILES=(
  "MixFormerV2 student of VitTrack: decoder, 3 blocks (fp32)|vitstem-decoder/decoder3.onnx"
  "MixFormerV2 student of VitTrack: decoder, 3 blocks (int8)|vitstem-decoder/decoder3-int8.onnx"
  "MixFormerV2 student of VitTrack: decoder, 2 blocks (fp32)|vitstem-decoder/decoder2.onnx"
  "MixFormerV2 student of VitTrack: decoder, 2 blocks (int8)|vitstem-decoder/decoder2-int8.onnx"
  "MixFormerV2 student of VitTrack: readout, 3 blocks (fp32)|vitstem-readout/readout3.onnx"
  "MixFormerV2 student of VitTrack: readout, 3 blocks (int8)|vitstem-readout/readout3-int8.onnx"
  "MixFormerV2 student of VitTrack: readout, 2 blocks (fp32)|vitstem-readout/readout2.onnx"
  "MixFormerV2 student of VitTrack: readout, 2 blocks (int8)|vitstem-readout/readout2-int8.onnx"
)
STUDENTS=()
STUDENT_BENCH=()
for item in "${STUDENT_FILES[@]}"; do
  file="$RUNS/${item#*|}"
  if [[ -f "$file" ]]; then STUDENTS+=("${item%%|*}|--model $file"); STUDENT_BENCH+=(--extra-model "$file"); fi
done
slug() { echo "$1" | tr -c 'A-Za-z0-9\n' '_'; }

if [[ " $STEPS " == *" eval "* ]]; then
  for item in "${TRACKERS[@]}" "${PEERS[@]}" "${STUDENTS[@]}"; do
    name=${item%%|*}; opts=${item#*|}; s=$(slug "$name")
    # shellcheck disable=SC2086
    edge-track eval --sequences "$VAL" --starts 2 --noise-runs 4 --threads 1 $opts --json "$OUT/$s.val.json" >/dev/null
    # shellcheck disable=SC2086
    edge-track eval --sequences "$DEV" --noise-runs 4 --threads 1 $opts --json "$OUT/$s.dev.json" >/dev/null
    echo "measured $name"
  done
fi
if [[ " $STEPS " == *" bench "* ]]; then
  edge-track bench --sequences "$DEV" --rounds 3 --threads 1,2 --upstream-nanotrack "$SHARED/models/opencv" \
    --vittrack-model "$SHARED/models/vittrack/vitTracker.onnx" "${STUDENT_BENCH[@]}" --no-profile \
    --json "$OUT/bench.json" > "$OUT/bench.md"
fi
if [[ " $STEPS " == *" record "* ]]; then
  args=()
  for item in "${TRACKERS[@]}"; do name=${item%%|*}; s=$(slug "$name"); args+=(--tracker "$name" "$OUT/$s.val.json" "$OUT/$s.dev.json"); done
  for item in "${PEERS[@]}"; do name=${item%%|*}; s=$(slug "$name"); args+=(--peer "$name" "$OUT/$s.val.json" "$OUT/$s.dev.json"); done
  for item in "${STUDENTS[@]}"; do
    name=${item%%|*}; s=$(slug "$name"); file=${item#*--model }
    precision=fp32; [[ "$file" == *-int8.onnx ]] && precision=int8
    args+=(--student "$name" "$OUT/$s.val.json" "$OUT/$s.dev.json" --bench-row "$name" "onnxruntime-$precision ($(basename "$file"))")
  done
  python -m train.measure.record_results --cpu "${CPU:?say which CPU: CPU=\"...\"}" --bench "$OUT/bench.json" "${args[@]}" \
    --bench-row "NanoTrack V2, OpenCV TrackerNano" "nanotrack (opencv)" \
    --bench-row "NanoTrack V2, authors' loop" "upstream nanotrack-v2" \
    --bench-row "VitTrack, OpenCV TrackerVit" "vittrack (opencv)" \
    --bench-row "VitTrack, own loop (RGB input)" "vittrack-rgb (onnxruntime)" \
    --command "edge-track eval --sequences $VAL --starts 2 --noise-runs 4 --threads 1 --model NAME" \
    --command "edge-track eval --sequences $DEV --noise-runs 4 --threads 1 --model NAME" \
    --command "edge-track bench --sequences $DEV --rounds 3 --threads 1,2 --upstream-nanotrack $SHARED/models/opencv --vittrack-model $SHARED/models/vittrack/vitTracker.onnx ${STUDENT_BENCH[*]}"
fi
