"""The quality commands run end to end on the tiny pipeline, and their scoring is exact."""
import json

import numpy as np

from t2i.cli import main
from t2i.data.shapes import render_scene
from t2i.data.shapes_eval import canonical_prompts, scene_for_prompt
from t2i.eval.benchmarks import emoji_fidelity, shapes_benchmark
from t2i.pipelines.unclip import load_pipeline
from tiny import tiny_run  # noqa: F401


class RenderTruth:
    """A stand-in "model" that draws the ground truth: the benchmark must then score 1.0."""

    def __call__(self, prompts, *, num_images, seed, **options):
        from PIL import Image

        rng = np.random.default_rng(seed)
        return [Image.fromarray(render_scene(scene_for_prompt(p, rng, 64), 64)) for p in prompts for _ in range(num_images)]


def test_shapes_benchmark_scores_ground_truth_as_perfect(tmp_path):
    result = shapes_benchmark(RenderTruth(), samples=2, limit=3, batch_size=8, out_dir=tmp_path)
    summary = result["summary"]
    assert summary["overall"] == 1.0 and summary["held_out"] == 1.0
    assert len(result["images"]) == 2 * len(canonical_prompts(per_task=3))
    assert json.loads((tmp_path / "shapes.json").read_text())["summary"] == summary


def test_eval_commands_run_on_a_trained_pipeline(tiny_run, tmp_path, capsys):
    pipe = load_pipeline(tiny_run.pipeline)
    emoji = emoji_fidelity(pipe, samples=1, limit=3, batch_size=4)
    assert emoji["summary"]["captions"] == 3 and 0.0 <= emoji["summary"]["fidelity@5"] <= 1.0
    code = main(["eval", "shapes", "--model", str(tiny_run.pipeline), "--samples", "1", "--limit", "1", "-o", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "shapes.json").read_text())["summary"]
    assert set(summary) >= {"overall", "held_out", "single_object", "attribute_binding"}
