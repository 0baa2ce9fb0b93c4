#!/usr/bin/env bash
# The quality figures quoted in the README, on fixed seeds (4 images per prompt):
#   bash scripts/evaluate_shipped.sh [out-dir]
# shapes: the shapes-world benchmark (shared/benchmarks/shapes-world.md), LIMIT prompts per task;
# emoji:  fidelity@5, CLIP score, R-precision and FDs on 200 training and 180 held-out captions.
set -euo pipefail
out=${1:-eval}
limit=${LIMIT:-25}
python -m t2i.cli eval shapes --model shapes --samples 4 --seed 0 --limit "$limit" -o "$out/shapes"
python -m t2i.cli eval emoji --model emoji --samples 4 --seed 0 -o "$out/emoji"
