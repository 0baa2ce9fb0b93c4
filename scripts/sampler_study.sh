#!/usr/bin/env bash
# Quality against steps for each sampler on the shipped pipelines (docs/results/samplers.md):
#   bash scripts/sampler_study.sh [OUT]        then: python scripts/plot_sampler_study.py OUT
# Prior and decoder steps are set together (`--param steps`); every other option stays at the
# pipeline's defaults (4 reranked decoder candidates; emoji's caption memory). One torch thread,
# so it can run beside other work; about 1.5 hours on this project's 2-core machine.
set -euo pipefail
out=${1:-eval/samplers}
steps=${STEPS:-5 8 10 15 25}
t2i() { OMP_NUM_THREADS=1 python -m t2i --threads 1 "$@"; }
for model in shapes emoji; do
  # shapes: 10 prompts per task; emoji: 40 training captions (the sweep judges training captions)
  limit=$([ "$model" = shapes ] && echo 10 || echo 40)
  for run in ddim:uniform dpmpp-2m:uniform dpmpp-2m:karras unipc:uniform euler-a:uniform dpmpp-2m-sde:karras; do
    sampler=${run%%:*} spacing=${run##*:}
    dir="$out/$model-$sampler-$spacing"
    [ -f "$dir/sweep-steps.json" ] && continue  # resumable: a finished line is kept
    t2i eval sweep --model "$model" --param steps --values $steps --sampler "$sampler" --spacing "$spacing" \
      --samples 2 --seed 0 --limit "$limit" -o "$dir" --overwrite
  done
done
