"""Load: an N-trial tiny-bert study run by 2 workers on a local PostgreSQL server.

    python benchmarks/pg_load.py [--trials 50] [--epochs 2] [--posts 40] [--json out.json]
    python benchmarks/pg_load.py --trials 200 --epochs 1 --posts 20   # the issue-20 run

Reports, per worker, the RSS after each of its trials (first, median, last) and the
study's checkpoint footprint after each trial, from the workers' hpo.jsonl lines; whether
any trial was lost or run twice (the study's finished trials, their numbers, trial
directories and `trial_end` lines); and the storage round trips per trial (the server's
committed + rolled-back transactions on the study database, `pg_stat_database`, over the
run). Uses the test suite's throwaway PostgreSQL cluster (Debian's initdb + pg_ctl on
127.0.0.1).
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


def transactions(server: PostgresServer) -> int:
    """Committed + rolled-back transactions on the study database so far."""
    import psycopg2

    with (
        psycopg2.connect(
            host="127.0.0.1", port=server.port, user="postgres", dbname="postgres"
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'optuna'"
        )
        return int(cursor.fetchone()[0])


def study_integrity(url: str, requested: int) -> dict[str, object]:
    """No trial lost, none run twice: the study's trials as its database has them."""
    import optuna

    storage = url.replace("postgresql://", "postgresql+psycopg2://")
    trials = optuna.load_study(study_name="load", storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    dirs = [t.user_attrs.get("trial_dir") for t in trials if t.user_attrs.get("trial_dir")]
    return {
        "requested": requested,
        "finished": len(finished),
        "all_trials": len(trials),
        "failed_not_surplus": sum(
            t.state.name == "FAIL" and not t.user_attrs.get("surplus") for t in trials
        ),
        "trial_numbers_unique": len({t.number for t in trials}) == len(trials),
        "trial_dirs_unique": len(set(dirs)) == len(dirs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--posts", type=int, default=40)
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
                f"dataset.synthetic_num_posts={args.posts}",
                "dataset.max_length=64",
                "dataset.doc_stride=8",
                f"trainer.max_epochs={args.epochs}",
                "tracking.backend=none",
                f"study.storage={server.url}",
                "--optimization-metric",
                "val_auc",
            ]
            transactions_before = transactions(server)
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
            round_trips = transactions(server) - transactions_before
            integrity = study_integrity(server.url, args.trials)
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
            "integrity": {
                **integrity,
                "trial_end_lines": len(ends),
                "trial_end_numbers_unique": len({e["number"] for e in ends}) == len(ends),
            },
            "storage_transactions": round_trips,
            "storage_transactions_per_finished_trial": round(round_trips / max(1, len(ends)), 1),
        }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if codes == [0, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
