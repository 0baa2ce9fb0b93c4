#!/usr/bin/env bash
# The shipped imagen-shapes base (docs/results/imagen.md, sessions 31 and 32): session 22's base
# (scripts/train_imagen.sh) trained on for rounds of 6,000 steps on the relation-heavy mix, the
# learning rate annealed to zero by a cosine in each round; from the third round on, half the
# captions that list phrases are read with phrase-mixed token states (options.phrase_mix, what
# sampling's --phrase-mix does; the shipped base was trained when only "and" split a list, at
# 569ff22). A fourth round adds nothing (session 33). About 40 minutes a round on one core:
#   bash scripts/finetune_imagen_base.sh [ROUNDS]
# BASE is the base to start from: by default scripts/train_imagen.sh's output. The shipped one
# started from session 22's base, which `git worktree add /tmp/t2i-s22 60f92f5` puts at
# /tmp/t2i-s22/t2i/assets/models/imagen-shapes/base. The high-noise expert
# (scripts/train_imagen_expert.sh) is a UNet of its own: any base can be assembled with it.
set -euo pipefail
rounds=${1:-3}
runs=${RUNS:-runs}
data=${DATA:-data/shapes-relations}
t2i() { python -m t2i.cli "$@"; }
m=t2i/assets/models/imagen-shapes

[ -f "$data/data.jsonl" ] || python scripts/make_shapes_relations.py "$data" --extra 10000
start=${BASE:-$runs/imagen-shapes-base} lr=1.5e-4
for round in $(seq 1 "$rounds"); do
    mix=0; [ "$round" -ge 3 ] && mix=0.5
    t2i train imagen-base --config imagen-shapes --data "$data/data.jsonl" --init-from "$start" --lr $lr --steps 6000 \
        --set train.lr_decay=cosine --set options.phrase_mix=$mix --no-progress --out "$runs/imagen-shapes-base-round$round"
    start="$runs/imagen-shapes-base-round$round" lr=1e-4
done
t2i assemble --imagen-base "$start" --imagen-base $m/base-from-900 --imagen-sr $m/sr-64 --config imagen-shapes -o "$runs/imagen-shapes-finetuned"
