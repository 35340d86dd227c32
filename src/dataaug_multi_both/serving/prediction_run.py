"""`predict` end to end: read posts in chunks, predict, write each record as it is made.
The output file is written under a temporary name and renamed when complete (a failed run
leaves no half file); stdout carries only records, progress goes to stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from dataaug_multi_both.checkpointing.atomic import remove_quietly
from dataaug_multi_both.errors import ConfigError, OutputWriteError, TrainingError, first_line
from dataaug_multi_both.serving.model_source import LoadedModel
from dataaug_multi_both.serving.posts import count_posts, read_posts
from dataaug_multi_both.serving.predictor import Predictor
from dataaug_multi_both.serving.writers import WRITERS

CHUNK_POSTS = 64  # posts read, predicted and written at a time (and a progress step)


@dataclass
class PredictionSummary:
    posts: int
    seconds: float


def run_prediction(
    loaded: LoadedModel,
    source: str,
    output: Path | None,
    output_format: str,
    device: torch.device,
    batch_size: int,
    threshold: float | None,
    show_progress: bool,
) -> PredictionSummary:
    import time

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = count_posts(source)
    predictor = Predictor(loaded, device, batch_size, threshold)
    started = time.perf_counter()
    done = 0
    progress = Progress(
        TextColumn("predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} posts/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=False,
    )
    with _opened(output) as out, progress:
        task = progress.add_task("predict", total=total, rate="-")
        writer = WRITERS[output_format](out)
        writer.begin(loaded.criteria, loaded.source)
        for chunk in read_posts(source, CHUNK_POSTS):
            try:
                records = predictor.records(chunk)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise TrainingError(f"inference failed: {first_line(exc)}") from None
            try:
                for post, record in zip(chunk, records, strict=True):
                    writer.write(record, post.text)
            except BrokenPipeError:
                raise  # `| head`: the reader left; not an error (run_command exits 0)
            except OSError as exc:
                raise OutputWriteError(f"cannot write the output: {exc.strerror or exc}") from None
            done += len(chunk)
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=len(chunk), rate=f"{rate:.1f}")
        writer.end()
    return PredictionSummary(done, time.perf_counter() - started)


@contextlib.contextmanager
def _opened(output: Path | None) -> Iterator[TextIO]:
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    if not output.name or output.is_dir():
        raise ConfigError(f"--output {output} is a directory, not a file")
    temporary = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:  # never through a planted symlink, never over an existing file
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
        os.replace(temporary, output)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        remove_quietly(temporary)  # gone already when the output was completed
