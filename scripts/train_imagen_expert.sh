#!/usr/bin/env bash
# The high-noise expert shipped in imagen-shapes (docs/results/imagen.md, sessions 28 to 30 and 34): a
# half-width base UNet for diffusion steps 900..999, where the layout is chosen, beside the
# shipped base (steps below 900) and super-resolution UNet. About 80 minutes on 2 cores:
#   bash scripts/train_imagen_expert.sh
# Six phases, each warm-started from the last: a plain expert on a relation-heavy mix; a
# contrastive term on relation flips over relation scenes alone (it learns which side); the mix
# again with relation and colour flips; one text block fewer, so the pipeline stays within 15 MB;
# then the relation scenes and the mix again with reworded captions and their flips (session 34).
set -euo pipefail
runs=${RUNS:-runs}
data=${DATA:-data/shapes-relations}
t2i() { python -m t2i.cli "$@"; }
expert=(--config imagen-shapes --set model.base_channels=24 --set model.context_dim=96 --set options.min_step=900 --no-progress)
contrast=(--lr 2e-4 --set options.caption_augment=0)
reworded=(--lr 2e-4 --set model.text_blocks=1 --set options.caption_augment=0.5 --set options.contrast_negatives=relation --set options.contrast_rephrased=true)

[ -f "$data/data.jsonl" ] || python scripts/make_shapes_relations.py "$data" --extra 10000
[ -f "$data/relations-only.jsonl" ] || grep '"img/r' "$data/data.jsonl" > "$data/relations-only.jsonl"

t2i train imagen-base --data "$data/data.jsonl" --steps 2500 "${expert[@]}" --set model.text_blocks=2 --out "$runs/expert-plain"
t2i train imagen-base --data "$data/relations-only.jsonl" --init-from "$runs/expert-plain" --steps 3000 "${expert[@]}" "${contrast[@]}" \
    --set model.text_blocks=2 --set options.caption_contrast=30 --set options.contrast_negatives=relation --out "$runs/expert-side"
t2i train imagen-base --data "$data/data.jsonl" --init-from "$runs/expert-side" --steps 1500 "${expert[@]}" "${contrast[@]}" \
    --set model.text_blocks=2 --set options.caption_contrast=10 --set options.contrast_negatives=relation,colour --out "$runs/expert-mix"
t2i train imagen-base --data "$data/data.jsonl" --init-from "$runs/expert-mix" --steps 1000 "${expert[@]}" "${contrast[@]}" \
    --set model.text_blocks=1 --set options.caption_contrast=10 --set options.contrast_negatives=relation,colour --out "$runs/expert-900"
# session 34: relation scenes again, then the mix, with captions reworded half the time and the
# rewordings' relation flips as negatives too
t2i train imagen-base --data "$data/relations-only.jsonl" --init-from "$runs/expert-900" --steps 3000 "${expert[@]}" "${reworded[@]}" \
    --set options.caption_contrast=30 --out "$runs/expert-reworded-side"
t2i train imagen-base --data "$data/data.jsonl" --init-from "$runs/expert-reworded-side" --steps 1000 "${expert[@]}" "${reworded[@]}" \
    --set options.caption_contrast=10 --out "$runs/expert-reworded"

m=t2i/assets/models/imagen-shapes
t2i assemble --imagen-base $m/base --imagen-base "$runs/expert-reworded" --imagen-sr $m/sr-64 --config imagen-shapes -o "$runs/imagen-shapes-expert"
