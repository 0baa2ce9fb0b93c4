"""The `t2i` command: a thin shell over the library. Bad input is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from t2i.errors import UsageError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse's own errors follow the one-line rule too."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"t2i: error: {message} (see {self.prog} --help)\n")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    """One flag per sampling option of every registered system (t2i/pipelines/options.py)."""
    from t2i import registry

    g = p.add_argument_group("sampling (defaults come from the model; [the systems an option belongs to])")
    for name, (f, systems) in registry.sampling_options().items():
        help_text = f"{f.metadata.get('help', '')} [{', '.join(systems)}]".strip()
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, type=None if f.metadata.get("choices") else f.metadata["kind"], choices=f.metadata.get("choices"), help=help_text)


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be between 0 and 2^63-1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="t2i", description="Text-to-image generation by diffusion: unCLIP (DALL-E 2) and Imagen.")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the cores that other running jobs leave idle)")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="images from a prompt, or from a file of prompts")
    g.add_argument("prompt", nargs="?")
    g.add_argument("-o", "--output", help="output PNG (a grid when -n > 1)")
    g.add_argument("--prompts-file", help="one prompt per line; writes {line:04d}_{sample:02d}.png into --out-dir")
    g.add_argument("--out-dir")
    g.add_argument("-n", "--num-images", type=int, default=1)
    g.add_argument("--seed", type=_seed, default=0)
    g.add_argument("--model", default="emoji", help="shipped model name or pipeline folder (default: emoji)")
    g.add_argument("--batch-size", type=int, default=16, help="images sampled together in batch mode")
    g.add_argument("--overwrite", action="store_true", help="replace existing output images")
    _sampling_args(g)

    v = sub.add_parser("variations", help="new images from an image's CLIP embedding")
    v.add_argument("image")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("-n", "--num-images", type=int, default=4)
    v.add_argument("--seed", type=_seed, default=0)
    v.add_argument("--model", default="emoji")
    v.add_argument("--overwrite", action="store_true", help="replace an existing output image")
    _sampling_args(v)

    from t2i import registry

    stages = "; ".join(f"{e.name}: {', '.join(s.name for s in e.stages)}" for e in registry.SYSTEMS)
    entries = {s.name: s for e in registry.SYSTEMS for s in e.stages}
    t = sub.add_parser("train", help=f"train one stage ({stages})", description="Train one stage of a system.",
                       epilog="stages:\n" + "\n".join(f"  {name:<10} {', '.join(registry.systems_of(name))}: {s.help}" for name, s in entries.items()),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("stage", choices=registry.stage_names(), metavar="STAGE", help=f"the stage to train ({stages})")
    t.add_argument("--data", required=True, help="emoji, shapes, or a folder / CSV / JSONL of images and captions")
    t.add_argument("--config", help="preset name or JSON file (default: the first of DATA, SYSTEM-DATA, emoji, SYSTEM-emoji with the stage)")
    t.add_argument("--out", help="run folder (default runs/DATA-STAGE)")
    for need in sorted({n for s in entries.values() for n in s.needs}):
        users = [s.name for s in entries.values() if need in s.needs]
        t.add_argument(f"--{need}", dest=need, help=f"trained {need} (run folder or component folder); needed by {', '.join(users)}")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--sample-every", type=int)
    t.add_argument("--save-every", type=int)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint, with the settings it was started with")
    t.add_argument("--init-from", help="start from these weights (component or run folder) with a fresh optimiser")
    t.add_argument("--set", action="append", default=[], metavar="PART.KEY=VALUE",
                   help="change one setting of the preset's stage section, e.g. options.drop_text=0.1 (repeatable; on --resume, applied to the run's own settings)")
    t.add_argument("--no-progress", action="store_true")

    a = sub.add_parser("assemble", help="put trained stages together into one pipeline folder",
                       description="Put trained stages (run or component folders) together into one pipeline folder. "
                                   "The system is the one whose stages are given: " + "; ".join(f"{e.name}: {', '.join(s.name for s in e.stages)}" for e in registry.SYSTEMS) + ". "
                                   "Give a stage several times for a cascade, lowest resolution first.")
    for name in registry.stage_names():
        a.add_argument(f"--{name}", dest=name, action="append", default=[], metavar="RUN", help=f"a trained {name} (run or component folder)")
    a.add_argument("--config", help="preset whose 'pipeline' section gives the default sampling options")
    a.add_argument("--caption-memory", metavar="DATA", help="keep DATA's training captions for retrieval-augmented text conditioning (see --caption-memory of generate)")
    a.add_argument("--memory-dims", type=int, default=0, metavar="N",
                   help="keep the caption memory's retrieval keys in N dimensions (the captions' top singular directions; default all 384): a smaller memory")
    weights = a.add_mutually_exclusive_group()
    weights.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    weights.add_argument("--int8", nargs="?", const="all", metavar="PARTS",
                         help="keep weight matrices and kernels as int8 with a scale per output channel (half of fp16's size); "
                              "with PARTS (comma-separated component names, e.g. sr-64,sr-128) only those, the rest fp16")
    a.add_argument("-o", "--output", required=True, help="new pipeline folder")
    a.add_argument("--overwrite", action="store_true", help="replace -o if it is a pipeline folder (never any other file or folder)")

    s = sub.add_parser("serve", help="an HTTP server speaking the OpenAI Images API, with a page to try the models at /")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback: only this machine; 0.0.0.0 exposes the server to the network)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--models", nargs="+", help="shipped model names or pipeline folders to serve (default: every shipped model)")
    s.add_argument("--max-queue", type=int, default=8, help="requests that may wait per model; more are refused with 429")
    s.add_argument("--timeout", type=float, default=300.0, help="seconds a request may wait for its images before a 503")
    s.add_argument("--max-batch", type=int, default=8, help="images of waiting requests (same model and options) run as one batch; 1: one request at a time")

    d = sub.add_parser("data", help="datasets on disk, for data that does not fit in memory")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser("prepare", help="decode a folder/CSV/JSONL once into a memory-mapped dataset folder that --data reads")
    dp.add_argument("source", help="a folder of images with same-named .txt captions, or a CSV/JSONL of path,caption")
    dp.add_argument("-o", "--output", required=True, help="new dataset folder")
    dp.add_argument("--size", type=int, default=64, help="side of the square images stored (prepare at the size you train at)")
    dp.add_argument("--workers", type=int, default=1, help="processes decoding images")
    dp.add_argument("--overwrite", action="store_true", help="replace -o if it is a prepared dataset (never any other file or folder)")
    dp.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("eval", help="measure a model's quality")
    esub = e.add_subparsers(dest="eval_command", required=True)
    for name, text in (("shapes", "the shapes-world benchmark: per-task, overall and held-out scores"),
                       ("emoji", "fidelity@5, CLIP score, R-precision and Fréchet distances, training and held-out captions"),
                       ("sweep", "vary one sampling option: table and plot"),
                       ("ablation", "what the decoder is conditioned on: caption only, text embedding, prior"),
                       ("prompts", "natural prompts never trained on: emoji prompts as people write them, shapes paraphrases"),
                       ("upsampling", "the pipeline's upsamplers against bicubic resizing of the same first-stage images: patch FD, fine detail, shapes score"),
                       ("report", "all of the above on one HTML page")):
        ep = esub.add_parser(name, help=text)
        ep.add_argument("--model", required=True)
        ep.add_argument("--samples", type=int, default=2 if name == "sweep" else 4, help="images per prompt")
        ep.add_argument("--seed", type=_seed, default=0)
        ep.add_argument("--limit", type=int, help="shapes: prompts per task; emoji: captions (prompts) per split")
        ep.add_argument("--batch-size", type=int, default=32)
        ep.add_argument("-o", "--output", required=name == "report", help="folder for the results, tables and pictures (new, empty, or an earlier result folder)")
        ep.add_argument("--overwrite", action="store_true", help="write into a non-empty folder that t2i did not make, replacing files of the same names")
        if name in ("sweep", "ablation", "prompts", "upsampling", "report"):
            ep.add_argument("--data", choices=("shapes", "emoji"), help="benchmark prompts (default: the model's dataset)")
        if name == "prompts":
            ep.add_argument("--dev", action="store_true", help="the development prompts (other emoji, other wordings), for tuning; the evaluation set stays unseen")
            ep.add_argument("--prompts-file", help="your own prompts instead, JSON lines as in t2i/assets/prompts "
                            "(shapes: prompt, canonical, task; emoji: prompt, target, split)")
        if name == "sweep":
            ep.add_argument("--param", required=True, help="a sampling option of the model (e.g. decoder-guidance, base-guidance, sampler), or steps (its main step counts, under each sampler)")
            ep.add_argument("--values", required=True, nargs="+")
        if name == "report":
            ep.add_argument("--sweep-values", type=float, nargs="+", help="guidance scales of the report's sweep of the model's main guidance (unCLIP: decoder, Imagen: base; default 1 3 5)")
        _sampling_args(ep)
    c = esub.add_parser("compare", help="two reports side by side")
    c.add_argument("report_a")
    c.add_argument("report_b")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # reports record the command that made them
    warnings.formatwarning = lambda message, category, *a, **k: f"t2i: warning: {message}\n"
    from t2i.errors import USER_ERRORS
    from t2i.threads import default_threads, usable_cores

    try:
        cores = usable_cores()
        if args.threads is not None and not 1 <= args.threads <= cores:
            raise UsageError(f"--threads must be between 1 and the {cores} cores this process may use, got {args.threads}")
        # from the console (argv None), an unset --threads means the cores that are idle now;
        # called from Python, the caller's own torch setting stands
        threads = args.threads if args.threads is not None or argv is not None else default_threads()
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        from t2i import commands

        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except USER_ERRORS as e:
        if os.environ.get("T2I_DEBUG"):
            raise
        print(f"t2i: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("t2i: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    if isinstance(e, OSError) and e.filename and str(e.filename) not in text:
        text = f"{e.filename}: {text}"
    return " ".join(text.split())


def run() -> None:
    """The console command: main(), then leave without tearing the interpreter down. Python's
    clean-up of torch's modules takes about 0.5 s here (`import torch` and exit: 2.6-2.9 s, with
    os._exit 1.8-2.4 s), a sixth of a cold `t2i generate`, and frees nothing that matters:
    by the time main returns every output is written and closed, and t2i starts no threads."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe (`t2i ... | head`): nothing left to say
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
