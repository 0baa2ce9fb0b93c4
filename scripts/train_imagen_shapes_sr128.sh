#!/usr/bin/env bash
# imagen-shapes' 64 -> 128 super-resolution UNet (docs/results/imagen.md, sessions 42 and 43), with
# the project's own commands:
#   bash scripts/train_imagen_shapes_sr128.sh
# It starts from the shipped 32 -> 64 UNet: the same convolutions at twice the size (no position
# embeddings). 1,500 steps of 16 images, about 50 minutes on two threads; run the script again
# after a kill and the run resumes. Then the cascade is assembled from the shipped base, expert
# and 32 -> 64 UNet with it, both super-resolution UNets in int8 (the expert stays fp16, bit for
# bit) to fit 15 MB; the preset's sr_stages 1 keeps the default image at 64 pixels.
# (The shipped sr-64 is int8 since session 43; the shipped 128 UNet started from its fp16 weights.)
# Since session 61 the cascade also holds the `shapes` pipeline's scene reader, which reads a
# prompt into its scene's caption, and the base is int8 too, to keep within 15 MB.
set -euo pipefail
runs=${RUNS:-runs}
threads=${THREADS:-2}
t2i() { python -m t2i.cli --threads "$threads" "$@"; }
m=t2i/assets/models/imagen-shapes
out=$runs/imagen-shapes-sr128

if [ -f "$out/latest" ]; then t2i train imagen-sr --data shapes --out "$out" --resume --no-progress
else t2i train imagen-sr --data shapes --config imagen-shapes --init-from $m/sr-64 \
    --set model.image_size=128 --set options.low_res_size=64 --lr 2e-4 --steps 1500 \
    --set train.lr_decay=cosine --set train.save_every=250 --out "$out" --no-progress; fi
t2i assemble --imagen-base $m/base --imagen-base $m/base-from-900 --imagen-sr $m/sr-64 --imagen-sr "$out" \
    --reader t2i/assets/models/shapes/reader --config imagen-shapes --int8 base,sr-64,sr-128,reader -o "$runs/imagen-shapes-128"
