"""Benchmark: building the serving image cold, again with nothing changed, and after only
the model changed.

    python benchmarks/image_build.py [--repeat 3]

Uses the project's own Dockerfile.serve, serve.py and inference code through
mlbuild.images.docker.build (the Docker SDK, no network), on the engine and base image that
`make services` provides (DOCKER_HOST and MLBUILD_IMAGE_BASE override). The wheels are
downloaded into the host cache once before timing (their download is reported on its
own). "Cold" builds every layer again (no cache); the base image is kept.
Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import harness
from harness import ROOT


def train_model(path: Path, rounds: int) -> None:
    import lightgbm as lgb

    from tasks.fetch import synthetic_frame

    frame = synthetic_frame(2000, 20, 2, seed=3)
    y = frame.pop("label")
    params = {"objective": "binary", "seed": 1, "deterministic": True, "force_row_wise": True,
              "num_threads": 1, "verbose": -1}
    lgb.train(params, lgb.Dataset(frame, y), num_boost_round=rounds).save_model(str(path))


def main(argv: list[str] | None = None) -> int:
    args = harness.parse(harness.parser(__doc__, repeat=3, quick={"repeat": 1}), argv)

    from mlbuild.core.fingerprint import package_version
    from mlbuild.images import docker as image
    from mlbuild.settings import wheel_cache_dir
    from mlbuild.tasks.image import FILES, SERVING_PACKAGES
    from tasks.release import Release

    packages = (*SERVING_PACKAGES, *Release.inference_packages)

    os.environ["DOCKER_HOST"], base = harness.docker_engine()
    client = image.engine()
    repo = "mlbuild-bench/serve"

    with tempfile.TemporaryDirectory(prefix="image-bench-") as tmp:
        context = Path(tmp, "context")
        (context / "app").mkdir(parents=True)
        (context / "model").mkdir()
        shutil.copyfile(FILES / "Dockerfile.serve", context / "Dockerfile")
        shutil.copyfile(FILES / "serve.py", context / "app/serve.py")
        shutil.copyfile(ROOT / "tasks/inference.py", context / "app/inference.py")
        models = [Path(tmp, "model-a.txt"), Path(tmp, "model-b.txt")]
        train_model(models[0], 50)
        train_model(models[1], 60)

        wheels_time, _ = harness.timed(
            image.download_wheels, [f"{p}=={package_version(p)}" for p in packages],
            context / "wheels", wheel_cache_dir())

        def build(model: Path, tag: str, cold: bool = False) -> float:
            shutil.copyfile(model, context / "model" / "model.txt")
            seconds, _ = harness.timed(
                image.build, context, f"{repo}:{tag}",
                buildargs={"BASE": base, "MODEL_SHA256": tag, "MODEL_FILE": "model.txt"}, labels={"bench": "1"},
                base=base, no_cache=cold)
            return seconds

        def clean() -> None:
            for img in client.images.list(name=repo):
                client.images.remove(img.id, force=True)
            client.images.prune(filters={"dangling": True})

        cold, same, new_model = harness.Timings(), harness.Timings(), harness.Timings()
        for round_ in range(args.repeat):
            clean()
            cold.add(build(models[0], "a", cold=True))
            same.add(build(models[0], "a"))
            new_model.add(build(models[1], "b"))
            print(f"  round {round_ + 1}: cold {cold.values[-1]:.1f} s, unchanged "
                  f"{same.values[-1]:.2f} s, new model {new_model.values[-1]:.2f} s", flush=True)
        layers_a = client.images.get(f"{repo}:a").attrs["RootFS"]["Layers"]
        layers_b = client.images.get(f"{repo}:b").attrs["RootFS"]["Layers"]
        clean()

    c, s, m = (x.median for x in (cold, same, new_model))
    harness.print_comparison(
        f"Serving image build on base {base}, median of {args.repeat} rounds", [
            ("nothing changed", s, c), ("only the model changed", m, c)],
        names=("rebuild", "cold build"))
    print(f"  wheels into the host cache (once): {wheels_time:.2f} s")
    shared = sum(a == b for a, b in zip(layers_a, layers_b, strict=False))
    print(f"  layers shared after the model change: {shared} of {len(layers_b)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
