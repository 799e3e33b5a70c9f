"""Start and stop a real ``mlflow server`` for integration tests.

The server listens on 127.0.0.1 at a free port, keeps runs in sqlite under a temporary folder and
serves artifacts (``--artifacts-destination``) so that clients upload them through the server.
``--workers 1`` and ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` bring start-up to ~10 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """One ``mlflow server`` subprocess; ``start()`` waits for ``/health``, ``stop()`` ends it by PID."""

    def __init__(self, root: str | os.PathLike, port: int | None = None, startup_timeout: float = 90.0):
        self.root = Path(root)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        with open(self.log_path, "wb") as log:
            # a session of its own, so that a SIGKILL fallback can reach the server's children too
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.root, start_new_session=True)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"exited with code {self.proc.returncode} before answering /health")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self._fail(f"did not answer {self.uri}/health within {self.startup_timeout:.0f} s")

    def _fail(self, what: str) -> None:
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"mlflow server on port {self.port} {what}; log tail:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server (it ends its workers), SIGKILL its process group after ``timeout`` s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group started with the server (its own PID)
            except ProcessLookupError:
                pass
            proc.wait(timeout=timeout)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
