"""Tracking through outages: every call to the MLflow server goes through an outbox.

:class:`OutboxTracker` wraps an :class:`~evobench.tracking.MLflowTracker`. While the server answers,
each call is delivered at once. When a call fails because the server is unreachable (connection
refused or reset, a timeout, a 5xx answer), the search goes on: that call and every later one are
queued, in order, in ``<results folder>/tracking/outbox.jsonl`` (with ``state.json``: the store, the
experiment, and the server's run ids of the runs already created), and the queue is retried at the
next call once :data:`RETRY_SECONDS` have passed, and when the comparison ends. Whatever is still
queued then stays in the results folder; ``evobench sync FOLDER`` delivers it later.

Every metric, parameter and artifact arrives exactly once: a call leaves the queue only after the
server accepted it; a metric keeps the timestamp of its original call (MLflow ignores an identical
metric logged twice), runs carry a tag ``evobench.outbox_id`` so that a run created just before a
connection broke is found instead of created twice, parameters are identical when re-logged, and an
artifact re-uploaded to the same path replaces itself. Text artifacts travel inside the outbox;
file artifacts are read from the results folder when delivered.

Errors that are not outages (a rejected parameter, a deleted experiment) are raised as before: a
bug never hides in the outbox.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evobench.jsonio import loads, write_json
from evobench.tracking import MAX_METRICS_PER_BATCH, MLflowTracker, Tracker, TrackingError, _check_status

RETRY_SECONDS = 30.0
FOLDER = "tracking"
_OUTAGE_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED"}


def is_outage(e: BaseException) -> bool:
    """Whether ``e`` means the tracking server could not be reached or could not answer (as opposed to
    rejecting the call)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)):
        return True
    if isinstance(e, RestException):
        return e.error_code in _OUTAGE_CODES
    if isinstance(e, MlflowException):  # mlflow's wording for a request that got no usable answer
        return str(e.message).startswith("API request to ") and " failed with " in str(e.message)
    return False


class OutboxTracker(Tracker):
    """An MLflow tracker that keeps running when its server does not answer (see the module docstring)."""

    def __init__(self, inner: MLflowTracker, folder: str | os.PathLike | None = None,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        # fail fast: mlflow's own retries take minutes per call; the outbox retries instead
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.inner = inner
        self.experiment = inner.experiment
        self.tracking_uri = inner.tracking_uri
        self.retry_seconds = float(retry_seconds)
        self.token = uuid.uuid4().hex[:12]
        self.run_ids: dict[str, str] = {}  # local run id -> the server's run id
        self.queue: list[dict[str, Any]] = []
        self.folder = Path(folder) if folder is not None else None
        self._count = 0
        self._comparison: str | None = None
        self._run: str | None = None
        self._last_try = 0.0
        self.delivered = 0

    # ---- the tracker API ----------------------------------------------------------------------------
    def start_comparison(self, name, params=None, tags=None) -> None:
        if self._comparison is not None:
            raise TrackingError("a comparison is already open; end it first")
        self._comparison = self._local("c")
        self._submit({"op": "create", "local": self._comparison, "parent": None, "role": "comparison",
                      "name": name, "params": _plain(params), "tags": _plain(tags)})

    def start_run(self, name, params=None, tags=None) -> None:
        if self._run is not None:
            raise TrackingError(f"a run is still open; call end_run() before starting {name!r}")
        self._run = self._local("r")
        self._submit({"op": "create", "local": self._run, "parent": self._comparison, "role": "run",
                      "name": name, "params": _plain(params), "tags": _plain(tags)})

    def log_curve(self, key, steps, values) -> None:
        if len(steps) != len(values):
            raise TrackingError(f"curve {key!r}: {len(steps)} steps but {len(values)} values")
        self._metrics([(key, float(v), int(s)) for s, v in zip(steps, values, strict=True)])

    def log_metrics(self, metrics, step=None) -> None:
        self._metrics([(k, float(v), int(step or 0)) for k, v in metrics.items()])

    def log_dict(self, obj, artifact_file) -> None:
        from evobench.jsonio import dumps, nan_to_none

        self.log_text(dumps(nan_to_none(obj), sort_keys=True), artifact_file)

    def log_text(self, text, artifact_file) -> None:
        self._submit({"op": "text", "run": self._current(), "text": text, "file": artifact_file})

    def log_artifact(self, path, artifact_path=None) -> None:
        p = Path(path)
        if not p.exists():
            raise TrackingError(f"artifact {path} does not exist")
        self._submit({"op": "artifact", "run": self._current(), "path": str(p.resolve()),
                      "artifact_path": artifact_path})

    def end_run(self, status="FINISHED") -> None:
        _check_status(status)
        if self._run is not None:
            run, self._run = self._run, None
            self._submit({"op": "end", "run": run, "status": status})

    def end_comparison(self, status="FINISHED") -> None:
        self.end_run(status)
        if self._comparison is not None:
            run, self._comparison = self._comparison, None
            self._submit({"op": "end", "run": run, "status": status})
        if self.queue:
            self.flush()
        if self.queue:
            where = f"; `evobench sync {self.folder}` delivers them" if self.folder else ""
            warnings.warn(f"tracking server {self.tracking_uri} unreachable: {len(self.queue)} tracking calls "
                          f"kept in the outbox{where}", stacklevel=2)

    def ids(self) -> dict[str, Any] | None:
        parent = self.run_ids.get(self._comparison or "")
        if parent is None:
            return None  # not created on the server yet: a resume starts a new parent run
        return {"tracker": "mlflow", "tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "comparison_run_id": parent, "run_id": self.run_ids.get(self._run or "")}

    def resume_comparison(self, ids) -> bool:
        if self._comparison is not None:
            raise TrackingError("a comparison is already open; end it first")
        if not self.inner.resume_comparison(ids):
            return False
        self._comparison = self._local("c")
        self.run_ids[self._comparison] = self.inner.comparison_id
        self.inner.comparison_id = None
        return True

    def set_folder(self, folder: str | os.PathLike | None) -> None:
        self.folder = None if folder is None else Path(folder)
        if self.queue:
            self._persist()

    # ---- queue and delivery -------------------------------------------------------------------------
    def _local(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    def _current(self) -> str:
        run = self._run or self._comparison
        if run is None:
            raise TrackingError("no open MLflow run: call start_comparison() or start_run() first")
        return run

    def _metrics(self, triples: list[tuple[str, float, int]]) -> None:
        # one call per batch the server takes, so a call delivered before an outage is not sent again
        now = int(time.time() * 1000)
        run = self._current()
        for i in range(0, len(triples), MAX_METRICS_PER_BATCH):
            self._submit({"op": "metrics", "run": run, "time": now,
                          "metrics": [list(t) for t in triples[i:i + MAX_METRICS_PER_BATCH]]})

    def _submit(self, call: dict[str, Any]) -> None:
        if not self.queue:
            try:
                self._deliver(call)
                self.delivered += 1
                return
            except Exception as e:  # noqa: BLE001 -- classified at once; anything but an outage is re-raised
                if not is_outage(e):
                    raise
                warnings.warn(f"tracking server {self.tracking_uri} unreachable ({' '.join(str(e).split())[:160]}); "
                              "the run goes on and tracking calls are kept in the outbox", stacklevel=3)
                self._last_try = time.monotonic()
        self.queue.append(call)
        self._persist()
        if time.monotonic() - self._last_try >= self.retry_seconds:
            self.flush()

    def flush(self) -> int:
        """Deliver queued calls in order until the server fails again; returns how many went."""
        self._last_try = time.monotonic()
        sent = 0
        while self.queue:
            try:
                self._deliver(self.queue[0])
            except Exception as e:  # noqa: BLE001 -- see _submit
                if not is_outage(e):
                    raise
                break
            self.queue.pop(0)
            sent += 1
        self.delivered += sent
        if sent:
            self._persist()
        return sent

    def _deliver(self, call: dict[str, Any]) -> None:
        op = call["op"]
        if op == "create":
            self.run_ids[call["local"]] = self._create(call)
            return
        run_id = self.run_ids[call["run"]]
        if op == "metrics":
            self.inner.log_metrics_to(run_id, call["metrics"], call["time"])
        elif op == "text":
            self.inner.log_text_to(run_id, call["text"], call["file"])
        elif op == "artifact":
            self.inner.log_artifact_to(run_id, call["path"], call["artifact_path"])
        elif op == "end":
            self.inner._terminate(run_id, call["status"], announce=call["run"].startswith("c"))
        else:
            raise ValueError(f"tracking outbox: unknown call {op!r}")

    def _create(self, call: dict[str, Any]) -> str:
        """The server's run for a queued ``create``: the one already made by an earlier attempt (found by
        its tag), else a new one."""
        tag = f"{self.token}:{call['local']}"
        client = self.inner.client
        found = client.search_runs([self.inner._experiment()], filter_string=f"tags.`evobench.outbox_id` = '{tag}'",
                                   max_results=1)
        if found:
            return found[0].info.run_id
        parent = self.run_ids[call["parent"]] if call["parent"] else None
        return self.inner._create(call["name"], call["params"], {**(call["tags"] or {}), "evobench.outbox_id": tag},
                                  call["role"], parent)

    def _persist(self) -> None:
        """Write the queue and the run ids to the results folder (atomically), if there is one."""
        if self.folder is None:
            return
        folder = self.folder / FOLDER
        if not self.queue:  # everything delivered: nothing left to sync
            for name in ("outbox.jsonl", "state.json"):
                (folder / name).unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "state.json", {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                                           "token": self.token, "ids": self.run_ids, "count": self._count})
        tmp = folder / "outbox.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for call in self.queue:
                f.write(json.dumps(call, ensure_ascii=False, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / "outbox.jsonl")

    @classmethod
    def load(cls, results_folder: str | os.PathLike) -> OutboxTracker:
        """The outbox a comparison left in ``results_folder`` (ValueError, one line, if there is none)."""
        folder = Path(results_folder) / FOLDER
        try:
            state = loads((folder / "state.json").read_text(encoding="utf-8"))
            lines = (folder / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
            queue = [json.loads(line) for line in lines if line.strip()]
        except FileNotFoundError:
            raise ValueError(f"{str(results_folder)!r} holds no tracking outbox ({FOLDER}/state.json, "
                             f"{FOLDER}/outbox.jsonl)") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"{folder}: unreadable tracking outbox ({type(e).__name__}: {e})") from None
        out = cls(MLflowTracker(state["tracking_uri"], experiment=state["experiment"]), results_folder)
        out.token, out.run_ids, out._count, out.queue = state["token"], dict(state["ids"]), int(state["count"]), queue
        return out


def _plain(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Params/tags as JSON data (what the outbox can keep), non-JSON values as their strings."""
    if obj is None:
        return None
    return json.loads(json.dumps(dict(obj), default=str))
