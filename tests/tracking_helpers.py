"""A tracker for tests that records the artifacts a comparison logs."""

from __future__ import annotations

from evobench.tracking import Tracker


class ArtifactRecorder(Tracker):
    """Keeps every ``log_artifact(path, artifact_path)`` call, in order."""

    def __init__(self):
        super().__init__()
        self.artifacts: list[tuple[str, str | None]] = []

    def log_artifact(self, path, artifact_path=None):
        self.artifacts.append((path, artifact_path))
