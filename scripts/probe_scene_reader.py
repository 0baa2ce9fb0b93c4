"""How often a scene reader reads a paraphrase as its canonical prompt's scene, per task and set,
without generating anything (seconds on one thread).

    python scripts/probe_scene_reader.py MODEL_OR_READER [PROMPT_FILES ...] [--above 0.5] [--wrong N]

MODEL_OR_READER: a pipeline with a scene reader (say `shapes`), or a reader's run or component
folder. PROMPT_FILES default to every shapes paraphrase set (t2i/assets/prompts). A reading counts
where the pipeline would use it: a valid scene, surer than --above; otherwise the prompt goes to
the stages as written ("kept"). --wrong N prints N misread prompts per file.
"""
import argparse
from pathlib import Path

import torch

from t2i.checkpoint import load_component, resolve_component
from t2i.eval.prompts import PROMPTS_DIR, shapes_paraphrases
from t2i.pipelines.loading import is_pipeline_folder, load_pipeline, shipped_models
from t2i.pipelines.scene_reading import check_reader, read_prompts
from t2i.text.scene_reading import same_scene


def reader_of(name: str):
    if name in shipped_models() or is_pipeline_folder(Path(name)):
        reader = load_pipeline(name).reader
        if reader is None:
            raise SystemExit(f"{name} has no scene reader")
        return reader
    reader = load_component(resolve_component(name), role="reader")
    check_reader(reader)
    return reader


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("files", nargs="*")
    p.add_argument("--above", type=float, default=0.5, help="the confidence a reading must pass (the pipeline's --scene-reading)")
    p.add_argument("--wrong", type=int, default=0, help="print this many misread prompts per file")
    args = p.parse_args()
    torch.set_num_threads(1)
    reader = reader_of(args.model)
    files = [Path(f) for f in args.files] or sorted(PROMPTS_DIR.glob("shapes-paraphrases*.jsonl"))
    for path in files:
        rows = shapes_paraphrases(path)
        prompts = [r.prompt for r in rows]
        said = [s if s != p else None for s, p in zip(read_prompts(reader, prompts, args.above), prompts)]  # None: kept as written
        right = [s is not None and same_scene(s, r.canonical) for s, r in zip(said, rows)]
        tasks = sorted({r.task for r in rows})
        share = {t: sum(ok for ok, r in zip(right, rows) if r.task == t) / sum(r.task == t for r in rows) for t in tasks}
        kept = sum(s is None for s in said) / len(rows)
        print(f"{path.name:32s} read right {sum(right) / len(rows):.3f}  kept {kept:.3f}  " + "  ".join(f"{t} {v:.3f}" for t, v in share.items()))
        for s, _, r in [x for x in zip(said, right, rows) if not x[1]][: args.wrong]:
            print(f"    {r.prompt!r} -> {s!r} (want {r.canonical!r})")


if __name__ == "__main__":
    main()
