#!/usr/bin/env bash
# Quality against steps for each sampler on the shipped pipelines (docs/results/samplers.md):
#   bash scripts/sampler_study.sh [OUT]        then: python scripts/plot_sampler_study.py OUT
# Prior and decoder steps are set together (`--param steps`); every other option stays at the
# pipeline's defaults (4 reranked decoder candidates; emoji's caption memory). One torch thread,
# so it can run beside other work: about 13 CPU-minutes per line on this project's machine.
# Lines run in order of interest, and a finished line is kept (the script resumes).
set -euo pipefail
out=${1:-eval/samplers}
steps=${STEPS:-5 8 10 15 25}
t2i() { OMP_NUM_THREADS=1 python -m t2i --threads 1 "$@"; }
lines="shapes:ddim:uniform shapes:dpmpp-2m:uniform shapes:unipc:uniform emoji:ddim:uniform emoji:dpmpp-2m:uniform emoji:unipc:uniform
       shapes:dpmpp-2m:karras emoji:dpmpp-2m:karras shapes:euler-a:uniform emoji:euler-a:uniform shapes:dpmpp-2m-sde:karras emoji:dpmpp-2m-sde:karras"
# sweep LINE FOLDER STEPS...: one line (model:sampler:spacing) into FOLDER/model-sampler-spacing, kept once finished
sweep() {
  local model sampler spacing dir limit
  IFS=: read -r model sampler spacing <<< "$1"
  dir="$2/$model-$sampler-$spacing"
  [ -f "$dir/sweep-steps.json" ] && return 0
  # shapes: 10 prompts per task; emoji: 40 training captions (the sweep judges training captions)
  limit=$([ "$model" = shapes ] && echo 10 || echo 40)
  shift 2
  t2i eval sweep --model "$model" --param steps --values "$@" --sampler "$sampler" --spacing "$spacing" \
    --samples 2 --seed 0 --limit "$limit" -o "$dir" --overwrite
}
# shellcheck disable=SC2086  # $steps is a list of step counts
for line in $lines; do sweep "$line" "$out" $steps; done
# 50 steps, where every sampler should have converged: today's and the earlier default sampler first
# (Karras lines stop at 25: at 50 steps the Karras spacing repeats a training timestep, which t2i refuses)
for line in shapes:dpmpp-2m:uniform shapes:ddim:uniform emoji:dpmpp-2m:uniform emoji:ddim:uniform $lines; do
  [[ "$line" == *:karras ]] && continue
  sweep "$line" "$out/steps50" 50
done
