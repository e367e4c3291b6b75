"""Progress of long transfers, shown only when a person is watching (stderr is a terminal)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

MIN_BYTES = 16 * 1024 * 1024  # smaller transfers finish before a bar is worth drawing


@contextlib.contextmanager
def transfer_progress(description: str, total: int | Callable[[], int]
                      ) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking byte counts (as boto3's ``Callback``), or None when silent.

    ``total`` may be a function, called only when a terminal is watching: sizing a
    download costs a request that nobody needs otherwise.
    """
    if not sys.stderr.isatty():
        yield None
        return
    total = total() if callable(total) else total
    if total < MIN_BYTES:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    # On stderr, where the check above looked: stdout may be a command's output.
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.advance(task, done)
