"""`predict` throughput and memory: posts/s and the peak RSS of the process on inputs of
growing size (flat memory = the same peak for 1,000 and 10,000 posts), and the size of an
export against its checkpoint.

    python benchmarks/predict_throughput.py [--json out.json] [--minilm-posts N]

Each model is trained for one epoch on 40 synthetic posts (the weights do not matter for
speed), then `predict` runs as a subprocess on synthetic-style posts (the generator's texts,
cycled with a running number so that none repeats), max_length 128, stride 32, batch 32,
one thread per process as the tests use. tiny-bert: 1,000 and 10,000 posts; MiniLM: 1,000
posts by default (the 10,000-post run is ~15 min on 2 cores: --minilm-posts 10000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import cli, machine, run, write_json


def posts_file(path: Path, count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dataaug_multi_both.data.synthetic import generate_tables

    posts, _ = generate_tables(200, seed=7)
    texts = list(posts["text"])
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(
                json.dumps({"post_id": f"p{i}", "text": f"({i}) {texts[i % len(texts)]}"}) + "\n"
            )


def predict_run(workdir: Path, checkpoint: Path, source: Path) -> dict[str, Any]:
    """One `predict` process: wall time and its own peak RSS (GNU time's %M)."""
    command = cli(
        "predict",
        "--checkpoint",
        str(checkpoint),
        "--input",
        str(source),
        "--output",
        "out.jsonl",
        "--batch-size",
        "32",
    )
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss_kb=%M", *command],
        cwd=workdir,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    peak_kb = int(done.stderr.strip().splitlines()[-1].removeprefix("maxrss_kb="))
    with (workdir / "out.jsonl").open() as out:
        lines = sum(1 for _ in out)
    return {
        "posts": lines,
        "wall_sec": round(wall, 2),
        "posts_per_sec": round(lines / wall, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def measure(model: str, sizes: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        run(
            cli(
                "train",
                "--model",
                model,
                "--dataset",
                "synthetic",
                "dataset.synthetic_num_posts=40",
                "dataset.max_length=128",
                "dataset.doc_stride=32",
                "trainer.max_epochs=1",
                "tracking.backend=none",
                "output.trial_id=bench",
            ),
            workdir,
            threads=1,
        )
        checkpoint = workdir / "experiments" / "trial_bench" / "checkpoints" / "epoch_001.pt"
        runs = []
        for size in sizes:
            source = workdir / f"posts_{size}.jsonl"
            posts_file(source, size)
            runs.append(predict_run(workdir, checkpoint, source))
            print(f"{model}: {runs[-1]}", flush=True)
        run(
            cli("export", "--checkpoint", str(checkpoint), "--output", "export"), workdir, threads=1
        )
        export_bytes = sum(p.stat().st_size for p in (workdir / "export").rglob("*") if p.is_file())
        return {
            "model": model,
            "runs": runs,
            "checkpoint_mb": round(checkpoint.stat().st_size / 1e6, 2),
            "export_mb": round(export_bytes / 1e6, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--minilm-posts", type=int, default=1000)
    args = parser.parse_args()
    results = {
        "machine": machine(),
        "settings": {"max_length": 128, "doc_stride": 32, "batch_size": 32, "threads": 1},
        "models": [
            measure("tiny-bert", [1000, 10000]),
            measure("minilm", [args.minilm_posts]),
        ],
    }
    print(json.dumps(results, indent=1))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
