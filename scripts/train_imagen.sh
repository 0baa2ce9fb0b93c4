#!/usr/bin/env bash
# The Imagen shapes runs of docs/results/imagen.md, with the project's own commands:
#   bash scripts/train_imagen.sh shapes
# The base and the super-resolution UNet do not depend on each other: they train side by side,
# one torch thread each. Both use constant learning rates, so a longer run is the same run
# continued (--resume --steps N). Session 14 stopped them at 2,250 and 1,500 steps (below).
set -euo pipefail
data=${1:?usage: train_imagen.sh shapes|emoji}
runs=${RUNS:-runs}
t2i() { OMP_NUM_THREADS=1 python -m t2i.cli --threads 1 "$@"; }

# The shipped imagen-shapes (session 22): the base warm-started from unCLIP's shapes decoder, 7,750
# steps; the super-resolution UNet from scratch, 6,000 steps (its preset):
#   BASE_INIT=t2i/assets/models/shapes/decoder BASE_LR=2e-4 BASE_STEPS=7750 SR_STEPS=6000 bash scripts/train_imagen.sh shapes
# and its base was then trained on by scripts/finetune_imagen_base.sh (session 31).
init=()
[ -n "${BASE_INIT:-}" ] && init=(--init-from "$BASE_INIT" --lr "${BASE_LR:-2e-4}")
t2i train imagen-sr --data "$data" --steps "${SR_STEPS:-1500}" --out "$runs/imagen-$data-sr" --no-progress &
t2i train imagen-base --data "$data" --steps "${BASE_STEPS:-2250}" "${init[@]}" --out "$runs/imagen-$data-base" --no-progress
wait
t2i assemble --imagen-base "$runs/imagen-$data-base" --imagen-sr "$runs/imagen-$data-sr" --config "imagen-$data" -o "$runs/imagen-$data"
# the Efficient U-Net base of the log: add --set "model.level_res_blocks=[1,2,2]" --set model.scale_skips=true --set model.downsample_first=true
