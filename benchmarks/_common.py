"""Shared helpers of the benchmarks: run a command, sample a directory's size while it runs,
read this project's run logs, measure the machine (matmul FLOP/s, disk write bandwidth)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "benchmarks" / "hf_trainer_baseline.py"


def tree_bytes(root: Path, skip: tuple[str, ...] = (".cache",)) -> int:
    """Bytes of the regular files under `root` (a file renamed away mid-walk counts 0)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    wall_sec: float
    peak_bytes: int = 0
    final_bytes: int = 0
    samples: list[int] = field(default_factory=list)


def run(
    command: Sequence[str],
    cwd: Path,
    threads: int,
    watch: Path | None = None,
    interval: float = 0.05,
    src: Path = REPO / "src",
) -> Run:
    """Run `command` with the package from `src`; if `watch` is given, sample its size every
    `interval` seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            if watch is not None and watch.exists():
                peak = max(peak, tree_bytes(watch))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    done_proc = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    final = tree_bytes(watch) if watch is not None and watch.exists() else 0
    result = Run(done_proc.returncode, done_proc.stdout, done_proc.stderr, wall, max(peak, final))
    result.final_bytes = final
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:4])} ... failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


def synthetic_overrides(s: dict[str, Any]) -> list[str]:
    """The data and schedule both sides of a benchmark train with (`s`: its settings)."""
    return [
        "dataset.dataset_id=synthetic",
        f"dataset.synthetic_num_posts={s['posts']}",
        f"dataset.max_length={s['max_length']}",
        "dataset.doc_stride=32",
        f"trainer.max_epochs={s['epochs']}",
        "trainer.batch_size=16",
    ]


def cli(command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"dataaug_multi_both.cli.{command}", *args]


def baseline(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(BASELINE), mode, *args]


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise SystemExit(f"no JSON result in the output:\n{text[-2000:]}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def matmul_flops(threads: int, n: int = 1024, repeats: int = 20) -> float:
    """Dense fp32 matmul FLOP/s of this machine with `threads` threads (best of 3)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(repeats):
                a @ b
            best = min(best, time.perf_counter() - started)
        return 2 * n**3 * repeats / best
    finally:
        torch.set_num_threads(before)


def disk_write_bandwidth(directory: Path, size_bytes: int) -> float:
    """Sequential write + fsync of `size_bytes` in `directory`, bytes per second."""
    path = directory / ".bandwidth-probe"
    block = os.urandom(1 << 20)
    started = time.perf_counter()
    with open(path, "wb") as handle:
        left = size_bytes
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)
        handle.flush()
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return size_bytes / seconds


def machine() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1))
