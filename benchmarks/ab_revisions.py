"""Training speed of two revisions of this project, alternated on the same machine.

    git worktree add /tmp/before <rev>
    python benchmarks/ab_revisions.py /tmp/before [--rounds 6] [--json out.json]

Runs `train --dry-run` (tiny-bert, the quick throughput settings of `throughput.py`) from the
other checkout's `src/` and from this one's, alternating A/B/B/A so that neither always runs
first, and compares the median `timing.train_sec` (training steps only). Used to check that a
change meant for GPUs does not slow CPU training.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import cli, median, read_jsonl, run, synthetic_overrides, write_json

HERE = Path(__file__).resolve().parent.parent
SETTINGS = {"model": "tiny-bert", "posts": 80, "epochs": 2, "max_length": 128}


def train_sec(checkout: Path, workdir: Path, tag: str, threads: int) -> float:
    run(
        cli(
            "train",
            "--model",
            SETTINGS["model"],
            "--dry-run",
            *synthetic_overrides(SETTINGS),
            f"trainer.num_threads={threads}",
            "tracking.backend=none",
            f"output.experiments_dir={workdir / 'experiments'}",
            f"output.trial_id={tag}",
        ),
        workdir,
        threads,
        src=checkout / "src",
    )
    events = read_jsonl(workdir / "experiments" / f"trial_{tag}" / "logs" / "train.jsonl")
    return sum(e["timing"]["train_sec"] for e in events if e["event"] == "epoch_end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="checkout of the revision to compare against")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    checkouts = {"other": args.other.resolve(), "this": HERE}
    seconds: dict[str, list[float]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = list(checkouts) if round_ % 2 == 0 else list(reversed(checkouts))
            for name in order:
                tag = f"{name}-{round_}"
                seconds[name].append(train_sec(checkouts[name], Path(tmp), tag, args.threads))
                print(f"round {round_ + 1}: {name} {seconds[name][-1]:.2f} s", file=sys.stderr)
    result: dict[str, Any] = {
        "settings": SETTINGS,
        "rounds": args.rounds,
        "train_sec": seconds,
        "median_sec": {name: median(values) for name, values in seconds.items()},
    }
    result["this_over_other"] = result["median_sec"]["this"] / result["median_sec"]["other"]
    print(
        f"median train_sec: other {result['median_sec']['other']:.2f} s, "
        f"this {result['median_sec']['this']:.2f} s "
        f"(this / other = {result['this_over_other']:.3f})"
    )
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
