"""Load: an N-trial tiny-bert study run by 2 workers on a local PostgreSQL server.

    python benchmarks/pg_load.py [--trials 50] [--json out.json]

Reports, per worker, the RSS after each of its trials (first, median, last) and the
study's checkpoint footprint after each trial, from the workers' hpo.jsonl lines. Uses the
test suite's throwaway PostgreSQL cluster (Debian's initdb + pg_ctl on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.conftest import PostgresServer  # noqa: E402  (the tests' server helper)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = PostgresServer(root / "pg")
        server.start()
        try:
            command = [
                sys.executable,
                "-m",
                "dataaug_multi_both.cli.hpo",
                "--config",
                str(REPO / "configs" / "hpo_small.yaml"),
                "--study-name",
                "load",
                "--study-dir",
                str(root / "experiments" / "study_load"),
                "--num-trials",
                str(args.trials),
                f"output.experiments_dir={root / 'experiments'}",
                "search_space.model_id.choices=[tiny-bert]",
                "dataset.synthetic_num_posts=40",
                "dataset.max_length=64",
                "dataset.doc_stride=8",
                "trainer.max_epochs=2",
                "tracking.backend=none",
                f"study.storage={server.url}",
                "--optimization-metric",
                "val_auc",
            ]
            started = time.monotonic()
            first = subprocess.Popen(
                command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            while not (root / "experiments" / "study_load" / "study.json").is_file():
                time.sleep(0.2)
            second = subprocess.Popen(
                command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            codes = [first.wait(), second.wait()]
            wall = time.monotonic() - started
        finally:
            server.stop()
        events = [
            json.loads(x)
            for x in (root / "experiments" / "study_load" / "logs" / "hpo.jsonl")
            .read_text()
            .splitlines()
        ]
        ends = [e for e in events if e["event"] == "trial_end"]
        footprint = [e["study_footprint_bytes"] / 1e6 for e in ends]
        workers = {}
        for e in ends:
            workers.setdefault(e["pid"], []).append(e["rss_mb"])
        result = {
            "trials": args.trials,
            "exit_codes": codes,
            "wall_sec": round(wall, 1),
            "trial_ends": len(ends),
            "states": {s: sum(e["state"] == s for e in ends) for s in {e["state"] for e in ends}},
            "rss_mb_per_worker": [
                {
                    "trials": len(rss),
                    "first": rss[0],
                    "median": statistics.median(rss),
                    "last": rss[-1],
                    "max": max(rss),
                }
                for rss in workers.values()
            ],
            "footprint_mb": {
                "first": footprint[0],
                "median": statistics.median(footprint),
                "last": footprint[-1],
                "max": max(footprint),
            },
            "footprint_mb_every_10th": footprint[::10],
        }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if codes == [0, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
