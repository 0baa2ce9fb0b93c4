"""`t2i eval report` and `t2i eval compare`: every evaluation of a model on one self-contained page.

The report folder holds index.html, the images and plots it shows (relative links, nothing
fetched), each evaluation's JSON and Markdown, and report.json with every figure, which
`compare` reads.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from t2i.errors import InputError
from t2i.eval.common import write_json

STYLE = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}" \
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%;image-rendering:pixelated}" \
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}"


def html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _images(out: Path, pattern: str) -> str:
    return "".join(f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}"><figcaption>{html.escape(p.stem)}</figcaption></figure>'
                   for p in sorted(out.glob(pattern)))


def _model_config(pipe) -> dict[str, Any]:
    from t2i.checkpoint import component_json
    from t2i.config import config_to_dict

    return {"defaults": config_to_dict(pipe.defaults), "info": pipe.info, "stages": {k: component_json(c) for k, c in pipe.components().items()}}


def build_report(pipe, *, model: str, benchmark: str, out_dir: str | Path, command: str, samples: int = 4, seed: int = 0,
                 limit: int | None = None, batch_size: int = 32, sweep_values: list[float] | None = None, **options) -> dict[str, Any]:
    """Run the benchmark, natural prompts, a sweep of the pipeline's main guidance scale (its
    options' `sweep_guidance`) and the system's own ablation, if its registry entry names one
    (unCLIP's decoder conditioning), into out_dir and write index.html and report.json."""
    from t2i import registry
    from t2i.eval.prompts import prompts_benchmark
    from t2i.eval.sweep import run_sweep

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(samples=samples, seed=seed, limit=limit, batch_size=batch_size, out_dir=out, **options)
    flags = f"--samples {samples} --seed {seed}" + (f" --limit {limit}" if limit else "") + \
        "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items())
    sweep_values = sweep_values or [1.0, 3.0, 5.0]
    if benchmark == "shapes":
        from t2i.eval.shapes import shapes_benchmark, shapes_table

        main = shapes_benchmark(pipe, **common)
        main_rows = [shapes_table(main["summary"])]
    else:
        from t2i.eval.emoji import emoji_benchmark, emoji_rows

        main = emoji_benchmark(pipe, **common)
        main_rows = emoji_rows(main["summary"])
    prompts = prompts_benchmark(pipe, benchmark=benchmark, **common)
    param = type(pipe.defaults).sweep_guidance.replace("_", "-")
    sweep = run_sweep(pipe, param, sweep_values, benchmark=benchmark, **common)
    commands = {
        "report": command,
        benchmark: f"t2i eval {benchmark} --model {model} {flags} -o {out}",
        "prompts": f"t2i eval prompts --model {model} --data {benchmark} {flags} -o {out}",
        "sweep": f"t2i eval sweep --model {model} --param {param} --values {' '.join(f'{v:g}' for v in sweep_values)} {flags} -o {out}",
    }
    tables = {benchmark: main_rows, "prompts": prompts["rows"], "sweep": sweep["rows"]}
    system = registry.system(pipe.kind)
    if system.ablation:
        tables["ablation"] = registry.resolve(system.ablation)(pipe, benchmark=benchmark, **common)["rows"]
        commands["ablation"] = f"t2i eval ablation --model {model} {flags} -o {out}"
    report = {"model": model, "benchmark": benchmark, "samples": samples, "seed": seed, "limit": limit, "commands": commands, "sweep_param": param,
              "tables": tables, "config": _model_config(pipe), "ablation_title": system.ablation_title}
    write_json(out, "report.json", report)
    (out / "index.html").write_text(render_html(report, out), encoding="utf-8")
    return report


def render_html(report: dict[str, Any], out: Path) -> str:
    b, cmds, tables = report["benchmark"], report["commands"], report["tables"]
    code = lambda key: f"<pre>{html.escape(cmds[key])}</pre>"  # noqa: E731
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t2i report: {html.escape(report['model'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>t2i evaluation: {html.escape(report['model'])}</h1>",
        f"<p>{report['samples']} samples per prompt, seed {report['seed']}. This page was made by:</p>{code('report')}",
        f"<h2>{html.escape(b)} benchmark</h2>{code(b)}{html_table(tables[b])}",
        "<h3>Samples</h3>" + _images(out, "shapes-*.png" if b == "shapes" else "emoji-*.png"),
        f"<h2>Natural prompts (never trained on)</h2>{code('prompts')}{html_table(tables['prompts'])}{_images(out, 'prompts-*.png')}",
        f"<h2>Guidance sweep ({html.escape(report.get('sweep_param', 'decoder-guidance'))})</h2>{code('sweep')}{html_table(tables['sweep'])}{_images(out, 'sweep-*.png')}",
        *([f"<h2>{html.escape(report.get('ablation_title', 'Ablation'))}</h2>{code('ablation')}{html_table(tables['ablation'])}{_images(out, 'ablation.png')}"]
          if "ablation" in tables else []),
        f"<h2>Model configuration</h2><pre>{html.escape(json.dumps(report['config'], indent=2))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _flatten(report: dict[str, Any]) -> dict[str, float]:
    """Every number of a report's tables as 'table / row / column' -> value."""
    flat: dict[str, float] = {}
    for table, rows in report["tables"].items():
        for i, row in enumerate(rows):
            label = next((str(v) for k, v in row.items() if isinstance(v, str) or k.endswith("guidance")), str(i))
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("guidance"):
                    flat[f"{table} / {label} / {k}"] = float(v)
    return flat


def read_report(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "report.json"
    if not path.is_file():
        raise InputError(f"{folder}: not a report folder (no report.json; make one with `t2i eval report`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg})") from None


def compare_reports(a: str | Path, b: str | Path) -> str:
    """A side-by-side text table of two reports' figures: A, B and B − A."""
    ra, rb = read_report(a), read_report(b)
    fa, fb = _flatten(ra), _flatten(rb)
    keys = list(dict.fromkeys([*fa, *fb]))
    width = max([len(k) for k in keys] + [6])
    fmt = lambda v: f"{v:>10.4f}" if v is not None else f"{'-':>10}"  # noqa: E731
    lines = [f"{'':{width}}  {'A':>10}  {'B':>10}  {'B - A':>10}", f"{'A = ' + str(a):{width}}", f"{'B = ' + str(b):{width}}"]
    for k in keys:
        va, vb = fa.get(k), fb.get(k)
        diff = vb - va if va is not None and vb is not None else None
        lines.append(f"{k:{width}}  {fmt(va)}  {fmt(vb)}  {fmt(diff)}")
    return "\n".join(lines)
