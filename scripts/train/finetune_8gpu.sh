#!/usr/bin/env bash
# The paper's fine-tuning on 8 GPUs: 2 pairs x 8 GPUs x 1 accumulation step = 16 pairs per step.
#   scripts/train/finetune_8gpu.sh [depthpro|depthanything] [extra key=value overrides...]
set -euo pipefail
GPUS=8 ACCUM_ITER=1
source "$(dirname "${BASH_SOURCE[0]}")/finetune_common.sh"
