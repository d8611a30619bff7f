"""Progress of a release: a Prefect progress artifact, plus a bar when a person is watching."""

from __future__ import annotations

import sys
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact


class ReleaseProgress:
    def __init__(self, release: str, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self._artifact = cast(
            UUID,
            create_progress_artifact(
                progress=0.0,
                key=artifact_key(release, "progress"),
                description=f"slides processed for release {release}",
            ),
        )
        self._bar: Any = None
        if sys.stderr.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=False)
            self._bar.start()
            self._task = self._bar.add_task(f"release {release}", total=total)

    def advance(self) -> None:
        self.done += 1
        update_progress_artifact(self._artifact, progress=100.0 * self.done / self.total)
        if self._bar is not None:
            self._bar.update(self._task, advance=1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def artifact_key(release: str, what: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    safe = "".join(c if c.isalnum() else "-" for c in release.lower()).strip("-")
    return f"{safe}-{what}"[:100]
