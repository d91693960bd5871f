#!/usr/bin/env bash
# The paper's fine-tuning on 8 GPUs: 2 pairs x 8 GPUs x 1 accumulation step = 16 pairs per step.
#   scripts/train/finetune_8gpu.sh [depthpro|depthanything] [extra key=value overrides...]
set -euo pipefail
prior=${1:-depthpro}; shift || true
torchrun --standalone --nproc_per_node 8 -m align3r.cli train --config "align3r_${prior}" \
  train.batch_size=2 train.accum_iter=1 "$@"
