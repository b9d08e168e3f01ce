"""An upload progress bar on stderr, shown only for big uploads to a terminal."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

MIN_BYTES = 1024 * 1024


class UploadBar:
    """Callable as ``on_progress(sent, total)``; use it as a context manager."""

    def __init__(self, enabled: bool = True, label: str = "Uploading") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()

    def __call__(self, sent: int, total: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._progress is None:
                if total < MIN_BYTES:
                    self.enabled = False
                    return
                self._start(total)
            assert self._progress is not None and self._task is not None
            self._progress.advance(self._task, sent)
            # Clear the bar as soon as the last byte is sent, before the result is printed.
            if self._progress.tasks[0].finished:
                self._progress.stop()

    def _start(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.label, total=total)

    def __enter__(self) -> UploadBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
