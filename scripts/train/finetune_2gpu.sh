#!/usr/bin/env bash
# The paper's fine-tuning on 2 GPUs: 2 pairs x 2 GPUs x 4 accumulation steps = 16 pairs per step.
#   scripts/train/finetune_2gpu.sh [depthpro|depthanything] [extra key=value overrides...]
set -euo pipefail
prior=${1:-depthpro}; shift || true
torchrun --standalone --nproc_per_node 2 -m align3r.cli train --config "align3r_${prior}" \
  train.batch_size=2 train.accum_iter=4 "$@"
