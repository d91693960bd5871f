# Sourced by finetune_2gpu.sh and finetune_8gpu.sh, which set GPUS and ACCUM_ITER:
#   <script> [depthpro|depthanything] [key=value overrides or align3r train options...]
# The prior is optional (default depthpro); anything else in first place must be an override
# (key=value) or an option (--print-config), so a mistyped prior is not taken for a config name.
usage="usage: $(basename "$0") [depthpro|depthanything] [key=value overrides...]"
prior=depthpro
if [[ $# -gt 0 ]]; then
  case $1 in
    depthpro | depthanything) prior=$1; shift ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *=* | -*) ;;
    *) printf '%s\nerror: unknown prior %q (depthpro or depthanything; overrides are key=value)\n' \
         "$usage" "$1" >&2; exit 2 ;;
  esac
fi
args=(--config "align3r_${prior}" train.batch_size=2 "train.accum_iter=$ACCUM_ITER" "$@")
for arg in "$@"; do  # printing the config needs one process, not one per GPU
  if [[ $arg == --print-config ]]; then exec python -m align3r.cli train "${args[@]}"; fi
done
exec torchrun --standalone --nproc_per_node "$GPUS" -m align3r.cli train "${args[@]}"
