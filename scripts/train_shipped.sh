#!/usr/bin/env bash
# Reproduce a shipped pipeline from scratch with the project's own commands:
#   bash scripts/train_shipped.sh emoji      (or: shapes)
# Stages that do not depend on each other run side by side, one torch thread each, which
# uses a 2-core machine better than one process with two threads. The default step counts are
# the ones the shipped models were trained with (the decoder and upsampler use constant learning rates, so a longer run is the same
# run continued). To continue training shipped weights: --init-from t2i/assets/models/NAME/STAGE.
set -euo pipefail
data=${1:?usage: train_shipped.sh emoji|shapes}
runs=${RUNS:-runs}
reader=()  # shapes only: its scene reader (below)
t2i() { OMP_NUM_THREADS=1 python -m t2i.cli --threads 1 "$@"; }

# the emoji decoder kept improving (fidelity@5 0.21 at 6,500 steps, 0.28 at 11,250, 0.38 at 16,500), so it ran longer;
# so did the emoji prior (cosine to the true image embedding on training captions 0.90 at 2,500, 0.99 at 11,750)
case $data in emoji) decoder_steps=16500 prior_steps=11750 ;; *) decoder_steps=8250 prior_steps=2500 ;; esac

# The shipped CLIP, prior and first decoder runs predate caption augmentation (the presets now
# turn it on), and the emoji ones the keyword captions: these stages run without augmentation.
off=(--set options.caption_augment=0)
t2i train clip --data "$data" --steps "${CLIP_STEPS:-1200}" "${off[@]}" --out "$runs/$data-clip" --no-progress
t2i train upsampler --data "$data" --steps "${UPSAMPLER_STEPS:-1500}" --out "$runs/$data-upsampler" --no-progress &
t2i train prior --data "$data" --clip "$runs/$data-clip" --steps "${PRIOR_STEPS:-$prior_steps}" "${off[@]}" --batch-size 64 --out "$runs/$data-prior" --no-progress &
t2i train decoder --data "$data" --clip "$runs/$data-clip" --steps "${DECODER_STEPS:-$decoder_steps}" "${off[@]}" --out "$runs/$data-decoder" --no-progress
decoder=$runs/$data-decoder
if [[ $data == shapes ]]; then
  # then a fine-tune that drops the caption 10% of the time instead of 50%, so the decoder leans on
  # the words for what the CLIP embedding barely holds (which object is where, which colour is whose)
  t2i train decoder --data shapes --clip "$runs/shapes-clip" --init-from "$decoder" --set options.drop_text=0.1 "${off[@]}" \
      --steps "${DECODER_TEXT_STEPS:-15000}" --out "$runs/shapes-decoder-text" --no-progress
  decoder=$runs/shapes-decoder-text
else
  # then a fine-tune on noised image embeddings (cosine 1 down to 0.86 to the clean one), since the
  # prior's embeddings land near, not on, the training images' (cosine 0.90 from a 2,500-step prior)
  t2i train decoder --data "$data" --clip "$runs/$data-clip" --init-from "$decoder" --set options.embed_noise=0.6 \
      --set options.caption_augment=0 --steps "${DECODER_NOISE_STEPS:-13000}" --out "$runs/$data-decoder-noise" --no-progress
  # then 1,500 steps with caption augmentation (the preset's 0.5), so the caption tokens the
  # decoder reads may be worded as people write them (natural prompts, docs/results/unclip.md)
  t2i train decoder --data "$data" --clip "$runs/$data-clip" --init-from "$runs/$data-decoder-noise" --set options.embed_noise=0.6 \
      --steps "${DECODER_NATURAL_STEPS:-1500}" --lr 1e-4 --out "$runs/$data-decoder-natural" --no-progress
fi
wait
clip=$runs/$data-clip
if [[ $data == shapes ]]; then
  # a matching head over the frozen CLIP (embeddings unchanged), for reranking decoder candidates.
  # The shipped head ran its first 1,000 steps at commit 4a5cf2c, before image-side negatives
  # existed (then: --steps 1000 --lr 1e-3 with a cosine schedule over 3,000 steps), and then:
  python scripts/make_shapes_relations.py "$runs/shapes-relations"
  t2i train clip --data "$runs/shapes-relations/data.jsonl" --config shapes --init-from "$clip" \
      --set model.match_depth=3 --set options.match_only=true --set options.hard_negatives=true "${off[@]}" \
      --steps "${MATCH_STEPS:-1000}" --lr 1e-3 --out "$runs/shapes-match-caption-side" --no-progress
  t2i train clip --data "$runs/shapes-relations/data.jsonl" --config shapes --init-from "$runs/shapes-match-caption-side" \
      --set model.match_depth=3 --set options.match_only=true --set options.hard_negatives=true "${off[@]}" \
      --set train.warmup_steps=50 --steps 1500 --lr 1e-3 --out "$runs/shapes-match" --no-progress
  # then the text side and the decoder fine-tuned with caption augmentation (the presets' 0.5:
  # "a picture of …", "2 red circles", an "A and B" list in the other order), which the stages
  # above predate. The text-only CLIP keeps every image embedding, so the decoder's inputs.
  # (The shipped decoder's fine-tune ran at commit 402776b, before numerals were among the variants;
  # 4,250 steps drew as well on the benchmark and worse on held-out pairs, 0.445 against 0.475.)
  t2i train clip --data shapes --init-from "$runs/shapes-match" --set model.match_depth=3 --set options.text_only=true \
      --steps 1500 --batch-size 256 --lr 3e-4 --out "$runs/shapes-clip-text" --no-progress &
  t2i train decoder --data shapes --clip "$runs/shapes-clip" --init-from "$decoder" --set options.drop_text=0.1 \
      --steps "${DECODER_AUG_STEPS:-1500}" --lr 1e-4 --out "$runs/shapes-decoder-aug" --no-progress
  wait
  t2i train prior --data shapes --clip "$runs/shapes-clip-text" --init-from "$runs/shapes-prior" --steps 2500 \
      --batch-size 64 --lr 1e-4 --out "$runs/shapes-prior-aug" --no-progress
  # session 19: the same three fine-tunes again, from those, once the augmentation had the
  # grammar of wordings (t2i/text/shapes_wording.py, commit 2bbe25a; the shipped stages were
  # trained before session 37 widened it, commit 6b86272, so a rerun now draws other wordings)
  t2i train clip --data shapes --init-from "$runs/shapes-clip-text" --set model.match_depth=3 --set options.text_only=true \
      --steps 1500 --batch-size 256 --lr 3e-4 --out "$runs/shapes-clip-words" --no-progress
  t2i train decoder --data shapes --clip "$runs/shapes-clip-words" --init-from "$runs/shapes-decoder-aug" --set options.drop_text=0.1 \
      --steps 1500 --lr 1e-4 --out "$runs/shapes-decoder-words" --no-progress &
  t2i train prior --data shapes --clip "$runs/shapes-clip-words" --init-from "$runs/shapes-prior-aug" --steps 2500 \
      --batch-size 64 --lr 1e-4 --out "$runs/shapes-prior-words" --no-progress
  wait
  # session 36: the matching head alone (towers frozen: prior and decoder stay valid) trained on
  # with every wording, each rephrasing with its own hard negatives (options.contrast_rephrased)
  t2i train clip --data shapes --init-from "$runs/shapes-clip-words" --set model.match_depth=3 --set options.match_only=true \
      --set options.hard_negatives=true --set options.contrast_rephrased=true --steps 1500 --lr 3e-4 \
      --out "$runs/shapes-match-words" --no-progress
  # from session 45 on, rounds of the same three fine-tunes: the text tower from $1 (text only, so
  # every image embedding and the decoder's inputs stay shapes-match-words'), the prior and decoder
  # from the round before; their runs are named shapes-{clip,prior,decoder}-$2
  text_round() {
    t2i train clip --data shapes --init-from "$1" --set model.match_depth=3 \
        --set options.text_only=true --steps 1500 --batch-size 256 --lr 3e-4 --out "$runs/shapes-clip-$2" --no-progress
    t2i train prior --data shapes --clip "$runs/shapes-clip-$2" --init-from "$prev_prior" --steps 2500 \
        --batch-size 64 --lr 1e-4 --out "$runs/shapes-prior-$2" --no-progress &
    t2i train decoder --data shapes --clip "$runs/shapes-match-words" --init-from "$prev_decoder" \
        --set options.drop_text=0.1 --steps 1500 --lr 1e-4 --seed 4 --out "$runs/shapes-decoder-$2" --no-progress
    wait
    prev_clip=$runs/shapes-clip-$2 prev_prior=$runs/shapes-prior-$2 prev_decoder=$runs/shapes-decoder-$2
  }
  prev_prior=$runs/shapes-prior-words prev_decoder=$runs/shapes-decoder-words
  # session 45: from those, the grammar widened (a scene's number of shapes, exclusions, collective
  # counts, style words; commit a2374ae)
  text_round "$runs/shapes-match-words" wider
  # session 47: with scenes said among words that leave the picture alone ("for my slides, ...",
  # t2i/text/context_words.py; commit 2f9d551)
  text_round "$prev_clip" context
  # session 48: twice more: with other names for circles and triangles ("a round shape"; commit
  # c93dd10), then with other words for every shape, colour and size ("a disc", "scarlet";
  # t2i/text/synonyms.py, commit 1208e28 and the next; a rerun now draws the lexicon in both)
  for words in names synonyms; do text_round "$prev_clip" "$words"; done
  # session 50: the matching head alone once more (towers frozen, so prior and decoder stay valid), on
  # the grammar with the lexicon, with colour and size negatives that know its words (commit bdcbe65;
  # a rerun now also draws a circle named twice and typos, in every stage above)
  t2i train clip --data shapes --init-from "$prev_clip" --set model.match_depth=3 --set options.match_only=true \
      --set options.hard_negatives=true --set options.contrast_rephrased=true --steps 1500 --lr 3e-4 \
      --out "$runs/shapes-match-synonyms" --no-progress
  # session 51: the three once more, the text tower from the one with that head, on the grammar with
  # typos and a circle named twice (commits bdcbe65 and 13ca750; a rerun of the rounds above already
  # draws them), then the head alone, with negatives that make one object two and two one (commit
  # ad2fa39): it had read "exactly one square" as a fit for two squares
  text_round "$runs/shapes-match-synonyms" typos
  t2i train clip --data shapes --init-from "$prev_clip" --set model.match_depth=3 --set options.match_only=true \
      --set options.hard_negatives=true --set options.contrast_rephrased=true --steps 1500 --lr 3e-4 \
      --out "$runs/shapes-match-count" --no-progress
  # session 54: the head alone once more, its words placed by rotary attention instead of learnt
  # absolute positions (commit 24d68b9): it had bound colours to shapes by where they stood
  t2i train clip --data shapes --init-from "$runs/shapes-match-count" --set model.match_depth=3 \
      --set model.match_text_positions=false --set model.match_rotary=true --set options.match_only=true \
      --set options.hard_negatives=true --set options.contrast_rephrased=true --steps 1500 --lr 3e-4 \
      --out "$runs/shapes-match-rotary" --no-progress
  # session 55: prior and decoder once more, drawing a rephrasing for 0.8 of their captions
  # instead of half (the text tower stays the last round's): colours and binding had been lost
  # in both when a prompt was worded otherwise
  often=(--set options.caption_augment=0.8 --lr 1e-4 --no-progress)
  t2i train prior --data shapes --clip "$prev_clip" --init-from "$prev_prior" --steps 2500 --batch-size 64 \
      "${often[@]}" --out "$runs/shapes-prior-often" &
  t2i train decoder --data shapes --clip "$runs/shapes-match-words" --init-from "$prev_decoder" --set options.drop_text=0.1 \
      --steps 1500 --seed 5 "${often[@]}" --out "$runs/shapes-decoder-often"
  wait
  # sessions 57-58: the head alone once more (towers frozen), on the grammar that also says counts
  # and attributes as labels ("circles (x3)", "circle: red"; commit 621ddc8)
  t2i train clip --data shapes --init-from "$runs/shapes-match-rotary" --set model.match_depth=3 \
      --set model.match_text_positions=false --set model.match_rotary=true --set options.match_only=true \
      --set options.hard_negatives=true --set options.contrast_rephrased=true --steps 1500 --batch-size 128 \
      --lr 3e-4 --seed 11 --out "$runs/shapes-match-fields" --no-progress
  clip=$runs/shapes-match-fields prior=$runs/shapes-prior-often decoder=$runs/shapes-decoder-often
  # session 59: a scene reader: it reads a prompt into its scene, and every stage then reads that
  # scene's caption (t2i/text/scene_reading.py); it reads words, not images, so it trains on the
  # captions and their wordings alone; session 60: a quarter of its draws are scenes with a relation
  # (the shipped run was started for 4,000 steps and resumed at step 750 for 3,000, the preset's)
  t2i train reader --data shapes --out "$runs/shapes-reader" --no-progress
  reader=(--reader "$runs/shapes-reader" --int8 reader)  # int8: the pipeline stays within its 25 MB
fi
# emoji keeps its training captions, and emojilib's search words (t2i/assets/emoji/search_words.json),
# for retrieval-augmented text conditioning (--caption-memory); keys in 192 dimensions keep it small
memory=(); [[ $data == emoji ]] && memory=(--caption-memory emoji --memory-dims 192)
t2i assemble --clip "$clip" --prior "${prior:-$runs/$data-prior}" --decoder "$decoder" \
    --upsampler "$runs/$data-upsampler" --config "$data" "${memory[@]}" "${reader[@]}" --overwrite -o "t2i/assets/models/$data"
