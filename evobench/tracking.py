"""Experiment tracking: a no-op :class:`Tracker` and :class:`MLflowTracker` (the default).

A *comparison* is one parent run (one ``evobench run`` head-to-head); every (baseline, task, seed)
is a nested run under it. Curves are metrics whose step is the number of evaluations spent.
Everything is batched (``log_batch``): one MLflow call per evaluation would cost ~7 ms each.

``import evobench.tracking`` does not import mlflow; :class:`MLflowTracker` imports it on first use.
Used as a context manager, a tracker ends whatever runs are still open with status ``FAILED``
(``KILLED`` for ``KeyboardInterrupt``) when the block raises, and ``FINISHED`` otherwise.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SUPPORTED_SCHEMES = ("sqlite", "http", "https", "file")
STATUSES = ("FINISHED", "FAILED", "KILLED")
# MLflow's limits (mlflow.utils.validation), copied so that this module imports without mlflow.
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000


class TrackingError(RuntimeError):
    """A tracking problem (unreachable store, misuse of the run protocol); the message is one line."""


def default_tracking_uri() -> str:
    """``sqlite:///<cwd>/mlruns.db`` (absolute, so a later ``chdir`` does not move the store)."""
    return f"sqlite:///{Path.cwd() / 'mlruns.db'}"


def flatten_params(params: Mapping[str, Any] | None, limit: int = MAX_PARAM_VAL_LENGTH) -> dict[str, str]:
    """Flatten nested mappings to dotted keys; values become strings cut to ``limit`` characters."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = _truncate(value, limit)

    for key, value in (params or {}).items():
        walk(str(key), value)
    return out


def _truncate(value: Any, limit: int) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (list, tuple, Mapping)) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _sqlite_path(uri: str) -> str:
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri[len("sqlite://"):]


def check_tracking_uri(uri: str | None = None, timeout: float = 3.0) -> None:
    """Raise :class:`TrackingError` fast if ``uri`` cannot be used; never imports mlflow.

    http(s): ``GET <uri>/health`` within ``timeout`` seconds (mlflow's own retries take minutes).
    sqlite: the database's directory exists and is writable. file: sets ``MLFLOW_ALLOW_FILE_STORE``.
    """
    uri = uri or default_tracking_uri()
    scheme = urlparse(uri).scheme.lower()
    if scheme in ("http", "https"):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
                resp.read(64)
        except urllib.error.HTTPError as e:
            if e.code == 404 or e.code >= 500:
                raise TrackingError(f"MLflow server {uri} is not healthy: GET {url} -> HTTP {e.code}") from None
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError is an OSError
            reason = getattr(e, "reason", None) or f"{type(e).__name__}: {e}"
            raise TrackingError(f"cannot reach MLflow tracking server {uri}: {reason}") from None
    elif scheme == "sqlite":
        path = _sqlite_path(uri)
        if path in ("", ":memory:"):
            return
        db = Path(path).expanduser()
        parent = db.parent if str(db.parent) else Path(".")
        if not parent.is_dir():
            raise TrackingError(f"tracking URI {uri}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
            raise TrackingError(f"tracking URI {uri}: {db} is not writable")
    elif scheme == "file":
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # mlflow 3 refuses the file store otherwise
        root = Path(urlparse(uri).path).expanduser()
        existing = root if root.exists() else root.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise TrackingError(f"tracking URI {uri}: {existing} is not a writable directory")
    else:
        raise TrackingError(
            f"unsupported tracking URI {uri!r}: use one of {', '.join(s + ':' for s in SUPPORTED_SCHEMES)} "
            "(e.g. sqlite:///mlruns.db or http://127.0.0.1:5000)"
        )


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise TrackingError(f"run status must be one of {', '.join(STATUSES)}, got {status!r}")


def _exit_status(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "FINISHED"
    return "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"


class Tracker:
    """The tracking contract; this base class does nothing (it is also :class:`NullTracker`).

    Trackers are found through ``evobench.registry.TRACKERS`` (``--tracker NAME``) and constructed
    as ``cls(tracking_uri=..., experiment=...)``; a tracker that cannot work must raise
    :class:`TrackingError` there, before anything runs.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "evobench") -> None:
        self.experiment = experiment

    def start_comparison(self, name: str, params: Mapping[str, Any] | None = None,
                         tags: Mapping[str, Any] | None = None) -> None:
        """Open the parent run of one head-to-head comparison."""

    def start_run(self, name: str, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Open a nested run (one per baseline, task, seed) under the open comparison."""

    def ids(self) -> dict[str, Any] | None:
        """What identifies the open comparison and nested run in the tracker (JSON data, kept in the
        results folder), so that a resumed comparison can continue them; None when nothing does."""
        return None

    def set_folder(self, folder: str | os.PathLike | None) -> None:
        """The results folder of the open comparison (where a tracker may keep what it could not
        deliver yet); called again when the folder gets its final name."""

    # the name of the nested run that resume_comparison ended KILLED (None: none was still running)
    killed_on_resume: str | None = None

    def resume_comparison(self, ids: Mapping[str, Any]) -> bool:
        """Reopen the comparison recorded by :meth:`ids` (its nested run that was in progress is ended
        ``KILLED``, its name kept in ``killed_on_resume``: the resumed run is logged as a new nested
        run). False when this tracker cannot (another store, a deleted run): the caller then starts a
        new comparison."""
        return False

    def log_curve(self, key: str, steps: Sequence[int], values: Sequence[float]) -> None:
        """Log a whole curve: metric ``key`` with ``values[i]`` at step ``steps[i]`` (evaluations)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log scalar metrics at ``step`` (0 if None) to the innermost open run."""

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """Store ``obj`` as a JSON artifact at ``artifact_file`` (e.g. ``best/recipe.json``)."""

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as an artifact at ``artifact_file``."""

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        """Upload a local file or directory under ``artifact_path`` of the innermost open run."""

    def end_run(self, status: str = "FINISHED") -> None:
        """End the open nested run (no-op when none is open)."""

    def end_comparison(self, status: str = "FINISHED") -> None:
        """End the open nested run, then the comparison (no-op when none is open)."""

    @contextlib.contextmanager
    def run(self, name: str, params: Mapping[str, Any] | None = None,
            tags: Mapping[str, Any] | None = None) -> Iterator[Tracker]:
        """``with tracker.run(...)``: a nested run ended FINISHED, or FAILED/KILLED if the block raises."""
        self.start_run(name, params, tags)
        try:
            yield self
        except BaseException as e:
            self._end_quietly(self.end_run, _exit_status(type(e)))
            raise
        self.end_run("FINISHED")

    def close(self, status: str = "FINISHED") -> None:
        """End every open run with ``status``."""
        self.end_run(status)
        self.end_comparison(status)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close("FINISHED")
        else:
            self._end_quietly(self.close, _exit_status(exc_type))
        return False

    @staticmethod
    def _end_quietly(end, status: str) -> None:
        """While an exception propagates, a failure to end runs must not replace it."""
        try:
            end(status)
        except Exception as e:  # noqa: BLE001
            warnings.warn(f"evobench tracker could not mark runs {status}: {e}", stacklevel=3)


class NullTracker(Tracker):
    """Tracks nothing (tests, dry runs, --no-tracking)."""


class MLflowTracker(Tracker):
    """Logs to MLflow through ``MlflowClient`` with explicit run ids (no global active-run state).

    Nested runs carry the ``mlflow.parentRunId`` tag. For a sqlite store the experiment's artifacts
    go to ``<db dir>/mlartifacts``; for a server, wherever the server serves them.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "evobench") -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        check_tracking_uri(self.tracking_uri)
        self._client = None
        self._experiment_id: str | None = None
        self.comparison_id: str | None = None
        self.run_id: str | None = None

    @property
    def client(self):
        """The ``MlflowClient`` (mlflow is imported here, on first use)."""
        if self._client is None:
            import logging

            from mlflow.tracking import MlflowClient

            # schema-creation INFO lines would interleave with the progress bar
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is None:
            location = None
            if self.tracking_uri.startswith("sqlite:"):
                db = Path(_sqlite_path(self.tracking_uri) or ".").expanduser().resolve()
                location = (db.parent / "mlartifacts").as_uri()
            try:
                self._experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
            except MlflowException:  # created meanwhile by another process
                exp = self.client.get_experiment_by_name(self.experiment)
                if exp is None:
                    raise
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                raise TrackingError(f"MLflow experiment {self.experiment!r} is deleted in {self.tracking_uri}; "
                                    "restore it or choose another experiment name")
            self._experiment_id = exp.experiment_id
        return self._experiment_id

    def _create(self, name: str, params, tags, role: str, parent: str | None) -> str:
        all_tags = {str(k): _truncate(v, MAX_TAG_VAL_LENGTH) for k, v in (tags or {}).items()}
        all_tags.update({"mlflow.runName": name, "evobench.role": role})
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run_id = self.client.create_run(self._experiment(), tags=all_tags, run_name=name).info.run_id
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[i: i + MAX_PARAMS_PER_BATCH], synchronous=True)
        return run_id

    def start_comparison(self, name, params=None, tags=None) -> None:
        if self.comparison_id is not None:
            raise TrackingError(f"a comparison is already open (run {self.comparison_id}); end it first")
        self.comparison_id = self._create(name, params, tags, "comparison", None)

    def ids(self) -> dict[str, Any] | None:
        if self.comparison_id is None:
            return None
        return {"tracker": "mlflow", "tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "comparison_run_id": self.comparison_id, "run_id": self.run_id}

    def resume_comparison(self, ids) -> bool:
        from mlflow.exceptions import MlflowException

        if self.comparison_id is not None:
            raise TrackingError(f"a comparison is already open (run {self.comparison_id}); end it first")
        if (ids.get("tracker"), ids.get("tracking_uri"), ids.get("experiment")) != (
                "mlflow", self.tracking_uri, self.experiment) or not ids.get("comparison_run_id"):
            return False
        try:
            parent = self.client.get_run(ids["comparison_run_id"])
        except MlflowException:
            return False
        if parent.info.lifecycle_stage == "deleted":
            return False
        stale = ids.get("run_id")
        if stale:
            try:
                info = self.client.get_run(stale).info
                if info.status == "RUNNING":
                    self._terminate(stale, "KILLED", announce=False)
                    self.killed_on_resume = info.run_name
            except MlflowException:
                pass  # gone: nothing to end
        self.client.update_run(parent.info.run_id, status="RUNNING")
        self.comparison_id = parent.info.run_id
        return True

    def start_run(self, name, params=None, tags=None) -> None:
        if self.run_id is not None:
            raise TrackingError(f"run {self.run_id} is still open; call end_run() before starting {name!r}")
        self.run_id = self._create(name, params, tags, "run", self.comparison_id)

    def _current(self) -> str:
        run_id = self.run_id or self.comparison_id
        if run_id is None:
            raise TrackingError("no open MLflow run: call start_comparison() or start_run() first")
        return run_id

    def _log_metrics(self, triples: list[tuple[str, float, int]]) -> None:
        self.log_metrics_to(self._current(), triples, int(time.time() * 1000))

    # ---- calls on an explicit run (also used by evobench.tracking_outbox to deliver queued calls) ----
    def log_metrics_to(self, run_id: str, triples, timestamp_ms: int) -> None:
        """Log (key, value, step) triples with one timestamp in ``log_batch`` calls of at most 1000 metrics
        (MLflow ignores an identical metric logged twice)."""
        from mlflow.entities import Metric

        metrics = [Metric(k, float(v), int(timestamp_ms), int(s)) for k, v, s in triples]
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i: i + MAX_METRICS_PER_BATCH], synchronous=True)

    def log_text_to(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` of run ``run_id``."""
        folder, _, fname = artifact_file.rstrip("/").rpartition("/")
        with tempfile.TemporaryDirectory(prefix="evobench-artifact-") as tmp:
            local = Path(tmp) / fname
            local.write_text(text, encoding="utf-8")
            self.client.log_artifact(run_id, str(local), folder or None)

    def log_artifact_to(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload a local file or directory under ``artifact_path`` of run ``run_id``."""
        p = Path(path)
        (self.client.log_artifacts if p.is_dir() else self.client.log_artifact)(run_id, str(p), artifact_path)

    def log_curve(self, key, steps, values) -> None:
        if len(steps) != len(values):
            raise TrackingError(f"curve {key!r}: {len(steps)} steps but {len(values)} values")
        self._log_metrics([(key, v, s) for s, v in zip(steps, values, strict=True)])

    def log_metrics(self, metrics, step=None) -> None:
        self._log_metrics([(k, v, step or 0) for k, v in metrics.items()])

    def log_dict(self, obj, artifact_file) -> None:
        from evobench.jsonio import dumps, nan_to_none

        self.log_text(dumps(nan_to_none(obj), sort_keys=True), artifact_file)

    def log_text(self, text, artifact_file) -> None:
        self.log_text_to(self._current(), text, artifact_file)

    def log_artifact(self, path, artifact_path=None) -> None:
        if not Path(path).exists():
            raise TrackingError(f"artifact {path} does not exist")
        self.log_artifact_to(self._current(), path, artifact_path)

    def _terminate(self, run_id: str, status: str, announce: bool) -> None:
        """``set_terminated``; mlflow 3 prints "View run" links for server runs: keep the comparison's."""
        key = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
        saved = os.environ.get(key)
        if not announce:
            os.environ[key] = "true"
        try:
            self.client.set_terminated(run_id, status)
        finally:
            if saved is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = saved

    def end_run(self, status="FINISHED") -> None:
        _check_status(status)
        if self.run_id is not None:
            run_id, self.run_id = self.run_id, None
            self._terminate(run_id, status, announce=self.comparison_id is None)

    def end_comparison(self, status="FINISHED") -> None:
        self.end_run(status)
        if self.comparison_id is not None:
            run_id, self.comparison_id = self.comparison_id, None
            self._terminate(run_id, status, announce=True)
