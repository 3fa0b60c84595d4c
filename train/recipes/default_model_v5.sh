#!/usr/bin/env bash
# The bundled default model, fifth generation: how to make it again from scratch.
# The third generation's weights (default_model_v3.yaml, 2 epochs), moved to the 224 px window
# and finetuned for one epoch (default_model_v4.yaml, its epoch1.pth.tar), then the straight line
# between the two taken at 0.3 of the way to the finetune (WiSE-FT; train/weights/average.py).
# alpha 0.3 and size update rate 0.2 were chosen on the validation split by the mean over
# rounding-noise runs (`edge-track eval --noise-runs 8`); the numbers:
# docs/benchmarks/2026-11-30-model-choice.md.
# The export below writes the stem's squeeze-excite as pooled 1x1 convs (fp32 after quantising);
# the first INT8 file of these weights, before that change, ran it as INT8 MatMuls.
set -euo pipefail
# The first model's weights, recovered from the file it first shipped as (commit 7d93e27; or train them
# again with train/configs/default_model.yaml and export + quantise as its header says).
mkdir -p runs/v1
git show 7d93e27:edge/data/model/edge-track-default.onnx > runs/v1/first.onnx
git show 7d93e27:edge/data/model/edge-track-default.step.onnx > runs/v1/first.step.onnx
python -m train.weights.recover_onnx runs/v1/first.onnx runs/v1/recovered.pth.tar
edge-track train train/configs/default_model_v3.yaml        # runs/default-model-v3/final.pth.tar
edge-track train train/configs/default_model_v4.yaml        # runs/default-model-v4/epoch1.pth.tar
python -m train.weights.average runs/default-model-v3/final.pth.tar runs/default-model-v4/epoch1.pth.tar \
  --alpha 0.3 --output runs/default-model-v5.pth.tar
edge-track export --checkpoint runs/default-model-v5.pth.tar --size-update-rate 0.2 --output runs/default-model-v5.onnx
edge-track quantize --model runs/default-model-v5.onnx --output edge/data/model/edge-track-default.onnx --reduce-range
