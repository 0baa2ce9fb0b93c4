#!/usr/bin/env bash
# The imagen-emoji cascade of docs/results/imagen.md (sessions 35-41), with the project's own commands:
#   bash scripts/train_imagen_emoji.sh
# The base starts from unCLIP's shipped emoji decoder (the same body: 48 channels, 1-2-2,
# cross-attention on MiniLM's token states) and trains one cosine of 13,000 steps of 32 images
# (about 1.5 hours on two threads). The preset draws each emoji's name 0.8 of the time
# (options.first_caption: the caption memory hands prompts on as names) and each emoji group as
# often as a single image (options.balance_groups); sessions 35-40 trained three rounds, 49,000
# steps, without them, to fidelity@5 0.46 (session 41 in the docs).
# The super-resolution UNet starts from imagen-shapes' (the same architecture; int8 since session 43,
# the shipped run started from its fp16 weights). Every run resumes:
# run the script again after a kill and it goes on from the last checkpoint. About 40 minutes on
# one thread for the super-resolution UNet.
set -euo pipefail
runs=${RUNS:-runs}
threads=${THREADS:-2}
t2i() { python -m t2i.cli --threads "$threads" "$@"; }

# train OUT STAGE ARGS...: start the run, or resume it (with the settings it started with) if it has a checkpoint
train() {
    local out=$1 stage=$2; shift 2
    if [ -f "$out/latest" ]; then t2i train "$stage" --data emoji --out "$out" --resume --no-progress
    else t2i train "$stage" --data emoji --config imagen-emoji "$@" --out "$out" --no-progress; fi
}

train "$runs/imagen-emoji-base" imagen-base \
    --init-from t2i/assets/models/emoji/decoder --lr 3e-4 --steps 13000 --set train.lr_decay=cosine \
    --set train.save_every=1000 --set train.keep_checkpoints=20
train "$runs/imagen-emoji-sr" imagen-sr \
    --init-from t2i/assets/models/imagen-shapes/sr-64 --lr 2e-4 --steps 4000 --set train.lr_decay=cosine
# int8 weights; the caption memory (192-d keys, 2.3 MB) steers everyday prompts to their nearest emoji name
t2i assemble --imagen-base "$runs/imagen-emoji-base" --imagen-sr "$runs/imagen-emoji-sr" --config imagen-emoji \
    --caption-memory emoji --memory-dims 192 --int8 -o "$runs/imagen-emoji"
