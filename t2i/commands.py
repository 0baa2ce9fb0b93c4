"""What each `t2i` subcommand does, as plain calls of the library (the CLI only parses)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from t2i import registry
from t2i.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
# sizes that fit in memory: a grid of -n images is sampled in one batch
MAX_IMAGES_PER_PROMPT = 64
MAX_BATCH = 256


def check_output_file(path: str | None, flag: str = "-o", *, overwrite: bool = False) -> Path:
    """Fail before any work if the image cannot be written there, or would replace a file unasked."""
    if not path:
        raise UsageError(f"{flag} is required")
    out = Path(path)
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{path}: output must end in one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: folder {parent} does not exist")
    if out.is_dir():
        raise UsageError(f"{path}: is a folder, not an image file")
    if out.exists() and not overwrite:
        raise UsageError(f"{path}: already exists (pass --overwrite to replace it)")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UsageError(f"{path}: cannot write there")
    return out


OUTPUT_MARK = ".t2i-output"  # left in every results folder t2i makes, so a re-run may write there again


def check_output_dir(path: str | None, *, flag: str = "--out-dir", overwrite: bool = False) -> Path:
    """A folder to write results into: new, empty, or one an earlier t2i command made (it holds
    OUTPUT_MARK). Another non-empty folder needs --overwrite. Files of the same names are
    replaced; nothing else in the folder is touched."""
    if not path:
        raise UsageError(f"{flag} is required")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{path}: exists and is not a folder")
    if out.is_dir() and not (out / OUTPUT_MARK).exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{path}: folder holds files that t2i did not write (pass --overwrite to write into it, replacing files of the same names)")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise UsageError(f"{path}: cannot write there")
    (out / OUTPUT_MARK).touch()
    return out


def read_prompts(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    if not lines:
        raise UsageError(f"{path}: no prompts")
    for i, line in enumerate(lines):
        if not line.strip():
            raise UsageError(f"{path}: line {i} is empty (one prompt per line)")
    return lines


def cmd_generate(args: argparse.Namespace) -> int:
    from t2i.image_grid import grid_image
    from t2i.pipelines.loading import load_pipeline
    from t2i.progress import StepBar

    if not 1 <= args.num_images <= MAX_IMAGES_PER_PROMPT:
        raise UsageError(f"-n must be from 1 to {MAX_IMAGES_PER_PROMPT}, got {args.num_images} (for more images, run again with another --seed)")
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size must be from 1 to {MAX_BATCH}, got {args.batch_size}")
    if args.prompts_file:
        if args.prompt:
            raise UsageError("give either a prompt or --prompts-file, not both")
        if args.output:
            raise UsageError("-o names one image; with --prompts-file give --out-dir")
        if not args.out_dir:
            raise UsageError("--out-dir is required with --prompts-file")
        prompts, out_dir = read_prompts(args.prompts_file), check_output_dir(args.out_dir, overwrite=args.overwrite)
    else:
        if args.prompt is None:
            raise UsageError("give a prompt (or --prompts-file FILE --out-dir DIR)")
        if not args.prompt.strip():
            raise UsageError("empty prompt")
        out = check_output_file(args.output, overwrite=args.overwrite)
    pipe = load_pipeline(args.model)
    options = pipe.defaults.updated(**_options(args))  # validates ranges before any work

    if not args.prompts_file:
        # with a scene reader, the caption of the scene it read (the pipeline keeps a caption as it is)
        said = pipe.read([args.prompt], options)[0]
        if said != args.prompt:
            print(f"read as: {said}", file=sys.stderr)
        images = pipe([said], num_images=args.num_images, seed=args.seed, **vars(options))
        (images[0] if len(images) == 1 else grid_image(images)).save(out)
        print(out)
        return 0
    # Batch mode: an image's noise depends on (--seed, its line, its sample), not on the batching.
    with StepBar(total=len(prompts) * args.num_images, desc="generate", unit="img") as bar:
        for line, sample, image in pipe.generate(prompts, num_images=args.num_images, seed=args.seed, batch_size=args.batch_size, **vars(options)):
            image.save(out_dir / f"{line:04d}_{sample:02d}.png")
            bar.update(1)
    print(out_dir)
    return 0


def _options(args: argparse.Namespace) -> dict:
    """The sampling options given on the command line (the rest come from the model)."""
    return {name: getattr(args, name) for name in registry.sampling_options() if getattr(args, name, None) is not None}


def cmd_variations(args: argparse.Namespace) -> int:
    from PIL import Image

    from t2i.image_grid import grid_image
    from t2i.pipelines.loading import load_pipeline

    if args.num_images < 1:
        raise UsageError(f"-n must be >= 1, got {args.num_images}")
    out = check_output_file(args.output, overwrite=args.overwrite)
    try:
        with Image.open(args.image) as im:
            image = im.copy()
    except FileNotFoundError:
        raise UsageError(f"{args.image}: no such file") from None
    except OSError:
        raise UsageError(f"{args.image}: not a readable image") from None
    except Image.DecompressionBombError as e:  # Pillow refuses images past its pixel limit (a decompression bomb)
        raise UsageError(f"{args.image}: too large to open ({e})") from None
    pipe = load_pipeline(args.model)
    if not hasattr(pipe, "variations"):
        raise UsageError(f"variations decode an image's CLIP embedding; {args.model} is an {pipe.kind} pipeline, which has none")
    images = pipe.variations(image, num_images=args.num_images, seed=args.seed, **_options(args))
    (images[0] if len(images) == 1 else grid_image(images)).save(out)
    print(out)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from t2i.train.build import default_preset, make_trainer, override_section, read_preset, run_record

    config = args.config or default_preset(args.stage, args.data)
    out = Path(args.out or f"runs/{Path(args.data).name}-{args.stage}")
    first = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one process checks and reports; the others would race its writes
    if not first:  # every process loads the same data: its warnings (skipped files, ...) are said once, by the first
        import warnings

        warnings.simplefilter("ignore")
    if first and (out / "latest").exists() and not args.resume:
        raise UsageError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    if first and out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "run.json").is_file())):
        raise UsageError(f"{out}: exists and is not a t2i run folder; give a new --out")
    if args.resume and args.init_from:
        raise UsageError("--resume and --init-from exclude each other")
    overrides = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "sample_every": args.sample_every, "save_every": args.save_every}
    # a resumed run keeps the settings it was started with; --set applies on top of them
    record = run_record(out, args.stage) if args.resume else None
    if record and args.config:
        raise UsageError(f"--config does not apply to --resume: the run continues with the settings in {out / 'run.json'} (change one with --set)")
    preset = override_section(record or read_preset(config), args.stage, args.set)
    needs = {name: getattr(args, name) for name in registry.stage(args.stage)[1].needs}
    trainer = make_trainer(args.stage, preset, data=args.data, out_dir=out, needs=needs, train_overrides=overrides, init_from=args.init_from, progress=not args.no_progress)
    if args.resume:
        if not trainer.resume():
            raise UsageError(f"{out}: no checkpoint to resume from")
        if first:
            print(f"resumed {out} at step {trainer.step}")
    figures = trainer.train()
    if first:
        print(f"{args.stage}: step {trainer.step}, " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items() if k != "step"))
        print(f"checkpoint: {trainer.latest_checkpoint()}")
    return 0


def _trained_on(run: str) -> dict:
    """{"data": NAME} when `run` is a training run folder that records its dataset (evaluation
    then knows which benchmark suits the model)."""
    import json

    try:
        data = json.loads((Path(run) / "run.json").read_text()).get("data")
    except (OSError, ValueError):
        return {}
    return {"data": data} if isinstance(data, str) else {}


def cmd_assemble(args: argparse.Namespace) -> int:
    import torch

    from t2i.checkpoint import atomic_folder
    from t2i.pipelines.loading import is_pipeline_folder
    from t2i.text.encoder import EMBED_DIM
    from t2i.train.build import read_preset

    target = atomic_folder(Path(args.output), overwrite=args.overwrite, owned=is_pipeline_folder)
    target.check()  # before loading anything: refuse to replace what t2i did not write
    stages = {name: getattr(args, name) for name in registry.stage_names() if getattr(args, name)}
    systems = [e for e in registry.SYSTEMS if set(stages) <= {s.name for s in e.stages}]
    if not stages or len(systems) != 1:
        raise UsageError("give the trained stages of one system, e.g. --clip RUN --prior RUN --decoder RUN --upsampler RUN")
    sources = {name: runs[0] if len(runs) == 1 else runs for name, runs in stages.items()}
    if args.memory_dims and not args.caption_memory:
        raise UsageError("--memory-dims sets the caption memory's keys: give --caption-memory DATA too")
    if not 0 <= args.memory_dims <= EMBED_DIM:
        raise UsageError(f"--memory-dims must be from 1 to {EMBED_DIM} (0: all of them), got {args.memory_dims}")
    if args.caption_memory:
        sources["caption_memory"] = args.caption_memory
    data = next((found for runs in stages.values() for run in runs if (found := _trained_on(run))), {})  # the dataset the runs record
    pipe = systems[0].load_pipeline_class().assemble(stages, preset=read_preset(args.config) if args.config else None, caption_memory=args.caption_memory,
                                                     memory_dims=args.memory_dims, info={"sources": sources, **data})
    named = args.int8 not in (None, "all")  # --int8 PARTS: those components alone
    int8_parts = [p.strip() for p in args.int8.split(",") if p.strip()] if named else []
    if named and not int8_parts:
        raise UsageError("--int8 PARTS names components, e.g. --int8 sr-64,sr-128 (or --int8 alone for all)")
    whole = torch.float32 if args.fp32 else torch.int8 if args.int8 == "all" else torch.float16
    path = pipe.save(args.output, dtype=whole, dtypes=dict.fromkeys(int8_parts, torch.int8), overwrite=args.overwrite)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"{path} ({size / 1e6:.1f} MB)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    import shlex

    from t2i.eval.common import markdown_table

    if args.eval_command == "compare":
        from t2i.eval.report import compare_reports

        print(compare_reports(args.report_a, args.report_b))
        return 0
    from t2i.eval.sweep import guess_benchmark, parse_values
    from t2i.pipelines.loading import load_pipeline

    for flag, value in (("--samples", args.samples), ("--limit", args.limit), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.batch_size > MAX_BATCH:
        raise UsageError(f"--batch-size must be from 1 to {MAX_BATCH}, got {args.batch_size}")
    # Everything the command line can get wrong fails here, before the model loads.
    values = parse_values(args.param, args.values) if args.eval_command == "sweep" else None
    if getattr(args, "sweep_values", None):
        values = parse_values("decoder-guidance", [f"{v:g}" for v in args.sweep_values])  # every guidance scale has the same range
    if getattr(args, "prompts_file", None) is not None:
        if args.dev:
            raise UsageError("--dev and --prompts-file each choose the prompts: give one")
        if args.data:  # without --data the model says which benchmark the file is for
            from t2i.eval.prompts import checked_prompts

            checked_prompts(args.prompts_file, args.data)
    if args.output:
        check_output_dir(args.output, flag="-o", overwrite=args.overwrite)
    pipe = load_pipeline(args.model)
    ablation = registry.system(pipe.kind).ablation
    if args.eval_command == "ablation" and not ablation:
        raise UsageError(f"`t2i eval ablation` runs a system's own ablation ({', '.join(s.name for s in registry.SYSTEMS if s.ablation)}); "
                         f"{args.model} is an {pipe.kind} pipeline, which has none")
    options = _options(args)
    pipe.defaults.updated(**options)
    common = dict(samples=args.samples, seed=args.seed, limit=args.limit, batch_size=args.batch_size, out_dir=args.output, **options)
    if args.eval_command == "shapes":
        from t2i.eval.shapes import shapes_benchmark

        print(json.dumps(shapes_benchmark(pipe, **common)["summary"], indent=2))
        return 0
    if args.eval_command == "emoji":
        from t2i.eval.emoji import emoji_benchmark

        print(json.dumps(emoji_benchmark(pipe, **common)["summary"], indent=2))
        return 0
    benchmark = args.data or guess_benchmark(args.model, pipe)
    if benchmark is None:
        raise UsageError(f"cannot tell which benchmark suits {args.model}: pass --data shapes or --data emoji")
    if args.eval_command == "sweep":
        from t2i.eval.sweep import run_sweep

        print(markdown_table(run_sweep(pipe, args.param, values, benchmark=benchmark, **common)["rows"]), end="")
        return 0
    if args.eval_command == "prompts":
        from t2i.eval.prompts import prompts_benchmark

        print(markdown_table(prompts_benchmark(pipe, benchmark=benchmark, dev=args.dev, prompts_file=args.prompts_file, **common)["rows"]), end="")
        return 0
    if args.eval_command == "upsampling":
        from t2i.eval.upsampling import upsampling_benchmark

        print(markdown_table(upsampling_benchmark(pipe, benchmark=benchmark, **common)["rows"]), end="")
        return 0
    if args.eval_command == "ablation":
        print(markdown_table(registry.resolve(ablation)(pipe, benchmark=benchmark, **common)["rows"]), end="")
        return 0
    from t2i.eval.report import build_report

    build_report(pipe, model=args.model, benchmark=benchmark, command=shlex.join(["t2i", *args.argv]), sweep_values=values, **common)
    print(Path(args.output) / "index.html")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from t2i.checkpoint import atomic_folder
    from t2i.data.prepared import is_prepared, prepare

    if not 1 <= args.size <= 4096:
        raise UsageError(f"--size must be from 1 to 4096, got {args.size}")
    from t2i.threads import usable_cores

    cores = usable_cores()
    if not 1 <= args.workers <= cores:
        raise UsageError(f"--workers must be from 1 to the {cores} cores this process may use, got {args.workers}")
    with atomic_folder(Path(args.output), overwrite=args.overwrite, owned=is_prepared) as tmp:
        info = prepare(args.source, tmp, args.size, workers=args.workers, progress=not args.no_progress)
    skipped = sum(info["skipped"].values())
    print(f"{args.output}: {info['count']} images at {info['size']}x{info['size']}" +
          (f"; skipped {skipped} ({', '.join(f'{n} {r}' for r, n in info['skipped'].items())}; first: {', '.join(map(_printable, info['first_skipped']))}; "
           f"all in {Path(args.output) / 'skipped.tsv'})" if skipped else ""))
    return 0


def _printable(name: str) -> str:
    """A file name for a one-line message: quoted and escaped when it holds a tab, a line break or the like."""
    return name if name.isprintable() else repr(name)


def cmd_serve(args: argparse.Namespace) -> int:
    import ipaddress
    import warnings

    from t2i.pipelines.loading import shipped_models
    from t2i.serve.app import serve

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535, got {args.port}")
    if args.max_queue < 1 or not 0 < args.timeout < float("inf"):
        raise UsageError("--max-queue must be >= 1 and --timeout a positive number of seconds")
    if not 1 <= args.max_batch <= MAX_BATCH:
        raise UsageError(f"--max-batch must be from 1 to {MAX_BATCH}, got {args.max_batch}")
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        warnings.warn(f"serving on {args.host}: anyone who can reach this machine can generate images with its CPU (there is no authentication)", stacklevel=1)
    serve(args.models or list(shipped_models()), host=args.host, port=args.port, max_waiting=args.max_queue, timeout=args.timeout, max_batch=args.max_batch)
    return 0
