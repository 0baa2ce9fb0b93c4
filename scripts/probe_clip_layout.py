"""What a shapes CLIP's image embedding holds: nearest-neighbour probes over random scenes.

    python scripts/probe_clip_layout.py t2i/assets/models/shapes/clip

For 3,000 random training-distribution scenes, each scene's nearest other scene by CLIP image
embedding (cosine) is asked: same number of objects? same shapes? same coloured shapes? And for
two-object scenes of two different shapes, among the neighbours with the same two shapes: is the
same shape on the left? (0.5 is chance: the embedding does not hold the layout.)
"""
import argparse

import numpy as np
import torch

from t2i.checkpoint import load_component
from t2i.data.shapes import random_scene, render_scene
from t2i.pipelines.sampling import clip_image_embeds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", help="a CLIP component folder (or a training run)")
    p.add_argument("--scenes", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(1)
    clip = load_component(args.clip, role="clip")
    size = clip.model.config.image_size
    rng = np.random.default_rng(args.seed)
    scenes = [random_scene(rng, size) for _ in range(args.scenes)]
    e = clip_image_embeds(clip, np.stack([render_scene(s, size) for s in scenes])).numpy()
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(1)
    count = np.array([len(s) for s in scenes])
    shapes = np.array([",".join(sorted(o.shape for o in s)) for s in scenes])
    coloured = np.array([",".join(sorted(f"{o.color} {o.shape}" for o in s)) for s in scenes])
    print(f"number of objects: {np.mean(count[nearest] == count):.3f} (majority class {np.bincount(count).max() / len(count):.3f})")
    print(f"set of shapes:     {np.mean(shapes[nearest] == shapes):.3f}")
    print(f"coloured shapes:   {np.mean(coloured[nearest] == coloured):.3f}")
    pairs = [i for i, s in enumerate(scenes) if len(s) == 2 and s[0].shape != s[1].shape]
    left = {i: min(scenes[i], key=lambda o: o.cx).shape for i in pairs}
    hits = []
    for i in pairs:
        same = [j for j in pairs if j != i and shapes[j] == shapes[i]]
        if same:
            hits.append(left[max(same, key=lambda j: sim[i, j])] == left[i])
    print(f"left shape, same two shapes: {np.mean(hits):.3f} over {len(hits)} scenes (chance 0.5)")


if __name__ == "__main__":
    main()
