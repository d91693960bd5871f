#!/usr/bin/env bash
# The GPU checks in one go: the CUDA tests (pytest -m cuda) and the H100 benchmarks that
# docs/benchmarks.md asks for. Made for a lent machine that has PyTorch but none of our other
# dependencies and no network, and that sees only this checkout (not ../shared).
#
#   scripts/gpu_check.sh prepare   # here, with pip access: fills .device/ (git-ignored, ~55 MB):
#                                  #   wheels the GPU image lacks, the fixtures and clip the tests read
#   scripts/gpu_check.sh run       # there (carry .device): installs the wheels into /tmp/site, runs
#                                  #   the CUDA tests, then each benchmark under its own time limit;
#                                  #   logs go to $OUT (or ./gpu_check_out)
#
# Each step has a time limit so that the whole run ends in about 8 minutes; a step that fails or
# times out is reported and the next one still runs. The exit status is the CUDA tests'.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEV="$ROOT/.device"
SHARED="${ALIGN3R_SHARED:-$ROOT/../shared}"
# versions as in the development environment; antlr4 4.9.3 (omegaconf's pin) exists only as an sdist
WHEELS=(roma==1.8.0 trimesh==5.2.0 hydra-core==1.3.8 omegaconf==2.3.1 natsort==8.4.0 av==18.1.0)

prepare() {
    rm -rf "$DEV" && mkdir -p "$DEV/wheels" "$DEV/shared/fixtures" "$DEV/shared/data/davis_lady_running/demo_data"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DEV/wheels" "${WHEELS[@]}" || exit 1
    python3 -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w "$DEV/wheels" || exit 1
    # the CUDA tests read the network and alignment fixtures and the sample clip
    cp -r "$SHARED/fixtures/model" "$SHARED/fixtures/align" "$SHARED/fixtures/README.md" "$DEV/shared/fixtures/"
    cp "$SHARED/data/davis_lady_running/demo_data/lady-running.mp4" "$DEV/shared/data/davis_lady_running/demo_data/"
    du -sh "$DEV"
    echo "now: run(command='bash scripts/gpu_check.sh run', carry=['.device'], timeout_s=600)"
}

step() {  # step NAME SECONDS COMMAND...: run under a time limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$OUT/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    return $rc
}

run() {
    OUT="${OUT:-$ROOT/gpu_check_out}"
    mkdir -p "$OUT"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$DEV"/wheels/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$ROOT" ALIGN3R_SHARED="$DEV/shared" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    cd "$ROOT" || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
    # only the CUDA test files: collecting the rest would import packages the GPU image lacks (evo, viser)
    step cuda_tests 150 python3 -m pytest -m cuda -q -p no:cacheprovider \
        tests/model/test_cuda.py tests/align/test_cuda.py tests/pipeline/test_cuda.py
    local tests_rc=$?
    step bench_model 120 python3 -m align3r bench model --device cuda --dtype bf16 --split
    step bench_align 90 python3 -m align3r bench align --device cuda --case fixture
    step bench_align_grouped 90 python3 -m align3r bench align --device cuda --case grouped
    step bench_e2e 120 python3 -m align3r bench e2e --scale full --device cuda
    return $tests_rc
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
