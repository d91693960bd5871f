#!/usr/bin/env bash
# The paper's fine-tuning on 2 GPUs: 2 pairs x 2 GPUs x 4 accumulation steps = 16 pairs per step.
#   scripts/train/finetune_2gpu.sh [depthpro|depthanything] [extra key=value overrides...]
set -euo pipefail
GPUS=2 ACCUM_ITER=4
source "$(dirname "${BASH_SOURCE[0]}")/finetune_common.sh"
