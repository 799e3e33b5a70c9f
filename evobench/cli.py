"""Command line: ``evobench run``, ``compare``, ``report``, ``eval``, ``check``, ``merge``, ``results diff``, ``sync``,
``submit``, ``leaderboard build|verify`` (in :mod:`evobench.leaderboard.cli`), ``list``.

Bad input (unknown names, invalid values, an unreachable tracking server) gives one line on stderr,
``evobench: error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from evobench.config import ConfigError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default also prints the usage)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="named preset (see `evobench list presets`); default: 'default'")
    p.add_argument("--config", metavar="FILE", help="YAML config file (applied over the preset)")
    p.add_argument("--tasks", help="comma-separated task names (see `evobench list tasks`)")
    p.add_argument("--report-tasks", help="comma-separated tasks scored only on each run's recommended model and "
                                          "on the sources (test split; outside the budget)")
    p.add_argument("--baselines", help="comma-separated baseline names, or 'all' (see `evobench list baselines`)")
    p.add_argument("--budget", type=int, help="evaluations per (baseline, task, seed); one evaluation = "
                                              "one candidate scored on the search split")
    p.add_argument("--seeds", help="seeds, e.g. '0,1,2', '42-46' or '0,5-7' (0 <= seed < 2**63)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlruns.db)")
    p.add_argument("--experiment", help="MLflow experiment name (default: evobench)")
    p.add_argument("--tracker", help="experiment tracker (see `evobench list trackers`; default: mlflow)")
    p.add_argument("--no-tracking", action="store_true", help="do not log anywhere (same as --tracker none)")
    p.add_argument("--out", help="folder for results JSON, table and plot (default: ./evobench-results)")
    p.add_argument("--name", help="name of this comparison (MLflow parent run, results folder)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto = cuda when present); "
                                    "for tasks whose models can run on a GPU")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--export-best", action="store_true", default=None,
                   help="also write each run's recommended model as a checkpoint folder (runs/<run>/checkpoint/: "
                        "weights, config and tokenizer of language models, recipe and hashes)")
    p.add_argument("--cache", metavar="DIR|off",
                   help="evaluation cache (a file or folder; 'off' = none); default: $EVOBENCH_EVAL_CACHE, else "
                        "$EVOBENCH_CACHE/evals.sqlite (~/.cache/evobench). A cached candidate costs no forward "
                        "pass but still counts against the budget")
    p.add_argument("--executor", choices=["serial", "ray", "ray-candidates"], default="serial",
                   help="where runs run: one after another here (default); as Ray tasks on --workers workers; or "
                        "one after another with each asked batch's candidates scored on --workers Ray actors "
                        "that hold the models (ray-candidates). Extra evobench[ray]; results are the same")
    p.add_argument("--workers", type=int, default=2, help="Ray workers (default 2; one run each at a time)")
    p.add_argument("--address", help="Ray cluster to join (e.g. 'auto' after `ray start --head`); default: a "
                                     "local Ray started for this comparison")
    p.add_argument("--resume", metavar="FOLDER",
                   help="continue an interrupted comparison: its .partial-XXXX or .incomplete results folder "
                        "(finished runs are kept; the run in progress continues from its journal); other "
                        "settings, if given, must equal the saved ones")


def _add_tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracker", help="experiment tracker (default: mlflow)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlruns.db)")
    p.add_argument("--experiment", default="evobench", help="MLflow experiment name")
    p.add_argument("--no-tracking", action="store_true", help="do not log anywhere")


def _add_gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=0.05, help="significance level, one-sided (default 0.05)")
    p.add_argument("--margin", type=float, default=1.0,
                   help="tolerated loss in points (1.0 = one percentage point; default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown (a PR comment)")


def build_parser() -> argparse.ArgumentParser:
    from evobench import __version__

    parser = _Parser(
        prog="evobench", description="Benchmark evolutionary model-merging algorithms head-to-head "
        "at an equal evaluation budget, with MLflow logging.")
    parser.add_argument("--version", action="version", version=f"evobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in (("run", "run a head-to-head comparison (default preset: every baseline on digits)"),
                        ("compare", "same as run")):
        p = sub.add_parser(name, help=help_, description=help_ + ". Settings: preset < --config < flags.")
        _add_run_args(p)
    rp = sub.add_parser("report", help="merge finished comparisons and print one table",
                        description="Merge results folders (or results.json files) of finished comparisons, "
                        "e.g. parts of one preset run in parallel, and print one table with statistics "
                        "recomputed over all runs.")
    rp.add_argument("paths", nargs="+", metavar="RESULTS", help="results folder or results.json")
    rp.add_argument("--json", metavar="FILE", help="also write the merged results as JSON")
    rp.add_argument("--plot", metavar="FILE", help="also redraw the best-so-far curves (PNG) from the runs' records")
    ep = sub.add_parser("eval", help="score one model on tasks, keeping per-example records",
                        description="Score one model on tasks and write results.json plus one JSONL record per "
                        "example. MODEL is a .safetensors state dict of the task's model family (e.g. a run's "
                        "best_model.safetensors), or a hub id / model directory / .gguf for language-model tasks.")
    ep.add_argument("model", metavar="MODEL")
    ep.add_argument("--tasks", required=True, help="comma-separated task names")
    ep.add_argument("--split", default="test", choices=["search", "test"], help="split to score (default: test)")
    ep.add_argument("--limit", type=int, help="score only the first N examples of each task")
    ep.add_argument("--batch-size", type=int, help="batch size for tasks that batch (language models)")
    ep.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ep.add_argument("--option", "-o", action="append", default=[], metavar="[TASK:]KEY=VALUE",
                    help="a task option (VALUE read as YAML), for every task or only TASK; repeatable, "
                         "e.g. -o data_dir=./realdata -o mgsm-ja:max_new_tokens=256")
    ep.add_argument("--out", default="evobench-results", help="results folder (default: ./evobench-results)")
    ep.add_argument("--name", help="name of this evaluation (default: the model's file or folder name)")
    _add_tracking_args(ep)
    ck = sub.add_parser("check", help="fail CI when a merged checkpoint regresses against a reference",
                        description="Score CANDIDATE on exactly the examples of REFERENCE (stored `evobench eval` "
                        "results, or a checkpoint scored first) and compare per task: exact McNemar for per-example "
                        "correctness, a seeded paired bootstrap for graded scores, against a non-inferiority margin. "
                        "Exit 0: no significant regression; 1: a regression; 2: could not run (bad input, results "
                        "that cannot be compared).")
    ck.add_argument("candidate", metavar="CANDIDATE", help="the checkpoint to check (as `evobench eval` takes it)")
    ck.add_argument("--reference", required=True, help="stored results (folder or results.json) or a checkpoint")
    ck.add_argument("--tasks", help="comma-separated tasks (default: every task of the stored reference)")
    ck.add_argument("--limit", type=int, help="score only the first N examples (a checkpoint reference)")
    ck.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ck.add_argument("--out", default="evobench-results", help="where the scored results go")
    _add_gate_args(ck)
    _add_tracking_args(ck)
    mp = sub.add_parser("merge", help="write a checkpoint from a ps, dfs, ps+dfs or params recipe (streamed, atomic)",
                        description="Write OUT/model.safetensors and OUT/recipe.json (knob values or layer path, input "
                        "and output hashes) from a recipe: a run folder (exact: from its best_genome.npy) or a recipe "
                        "JSON (knobs and scales rounded to 6 decimals). Merged tensor by tensor from the source files. "
                        "A layer path (dfs, ps+dfs) becomes a plain model of one block per step, its scales folded into "
                        "the weights (digits residual MLPs; Llama, Mistral, Qwen2, Qwen3 decoders). A params run's checkpoint is its "
                        "best_model.safetensors with recipe and hashes.")
    mp.add_argument("recipe", metavar="RECIPE", help="a run folder (runs/NNN-.../), run.json, best_recipe.json or recipe")
    mp.add_argument("--sources", metavar="NAME=FILE,...",
                    help="each source model of the recipe, by its name in the recipe, as .safetensors or a model "
                    "folder (a language model's layer path needs folders: their config.json names the architecture); "
                    "a params run needs none (model folders given add their config and tokenizer)")
    mp.add_argument("--base", metavar="FILE", help="the base model the recipe was searched with (.safetensors)")
    mp.add_argument("--merge-seed", type=int, help="DARE masks' seed (default: the run's merge_seed space option, else its seed; 0 for a recipe file)")
    mp.add_argument("--out", required=True, metavar="DIR", help="the checkpoint folder to create")
    res = sub.add_parser("results", help="compare stored results: `evobench results diff REFERENCE CANDIDATE`",
                         description="Work with stored results.")
    rsub = res.add_subparsers(dest="results_command", metavar="SUBCOMMAND", required=True)
    dp = rsub.add_parser("diff", help="is CANDIDATE worse than REFERENCE on the same examples?",
                         description="Compare two `evobench eval` results (folders or results.json) task by task "
                         "on the same examples: exact McNemar for per-example correctness, a seeded paired "
                         "bootstrap for graded scores, against a non-inferiority margin. Exit 0: no significant "
                         "regression; 1: a regression (named, with its effect, 95 % CI and p-value); 2: the "
                         "results cannot be compared (other examples, task versions, prompts, tokenizers).")
    dp.add_argument("reference", metavar="REFERENCE")
    dp.add_argument("candidate", metavar="CANDIDATE")
    dp.add_argument("--tasks", help="comma-separated tasks (default: every task of the reference)")
    _add_gate_args(dp)
    sp = sub.add_parser("sync", help="deliver the tracking calls a comparison kept while its MLflow server was down",
                        description="Deliver, in order and exactly once, the tracking calls that a comparison kept in "
                        "its results folder (tracking/outbox.jsonl) while its MLflow server could not be reached. "
                        "Exit 0 when everything is delivered, 1 when the server is still unreachable.")
    sp.add_argument("folder", metavar="FOLDER", help="the comparison's results folder")
    from evobench.leaderboard.cli import add_parsers as add_leaderboard_parsers

    add_leaderboard_parsers(sub)
    lp = sub.add_parser("list", help="list tasks, baselines, merge ops, presets",
                        description="List registered tasks, baselines, merge ops and presets.")
    lp.add_argument("what", nargs="?", default="all", choices=["all", "tasks", "baselines", "merge-ops", "presets", "trackers"])
    return parser


def _list(what: str) -> None:
    from evobench.config import preset_description, preset_names
    from evobench.registry import BASELINES, MERGE_OPS, TASKS, TRACKERS

    def doc(obj) -> str:
        text = (getattr(obj, "__doc__", "") or "").strip().splitlines()
        return text[0] if text else ""

    def task_doc(name: str) -> str:
        """The factory's docstring, else that of the Task class defined beside it (no factory call:
        building a problem may load models)."""
        import inspect
        import sys as _sys

        from evobench.task import Task

        f = TASKS.get(name)
        if doc(f):
            return doc(f)
        module = _sys.modules.get(getattr(f, "__module__", "") or "")
        tasks = [c for _, c in inspect.getmembers(module, inspect.isclass)
                 if issubclass(c, Task) and c is not Task and c.__module__ == module.__name__] if module else []
        return next((doc(c) for c in tasks if doc(c)), "")

    sections = {
        "tasks": lambda: [(n, task_doc(n)) for n in TASKS.names()],
        "baselines": lambda: [(n, f"[{'/'.join(BASELINES.get(n).spaces)}] {doc(BASELINES.get(n))}")
                              for n in BASELINES.names()],
        "merge-ops": lambda: [(n, ", ".join(f"{k.name}∈[{k.low:g},{k.high:g}]" for k in MERGE_OPS.get(n).knobs))
                              for n in MERGE_OPS.names()],
        "presets": lambda: [(n, preset_description(n)) for n in preset_names()],
        "trackers": lambda: [(n, doc(TRACKERS.get(n))) for n in TRACKERS.names()],
    }
    for sec, rows in sections.items():
        if what not in ("all", sec):
            continue
        print(f"{sec}:")
        for name, text in rows():
            print(f"  {name:<28}{text}")


def _tracker(args: argparse.Namespace, tracking_uri: str | None, experiment: str):
    """``(name, tracker)`` from ``--tracker``/``--no-tracking`` (default: mlflow), built from the registry."""
    from evobench.registry import TRACKERS
    from evobench.tracking import MLflowTracker

    name = "none" if args.no_tracking else (args.tracker or "mlflow")
    tracker = TRACKERS.get(name)(tracking_uri=tracking_uri, experiment=experiment)
    if type(tracker) is MLflowTracker and tracker.tracking_uri.lower().startswith(("http:", "https:")):
        from evobench.tracking_outbox import OutboxTracker

        tracker = OutboxTracker(tracker)  # a server that goes away mid-run does not stop the run
    return name, tracker


def _run(args: argparse.Namespace) -> int:
    from evobench.compare import run_comparison
    from evobench.config import build_config
    from evobench.report import format_table

    overrides = dict(tasks=args.tasks, report_tasks=args.report_tasks, baselines=args.baselines,
                     budget=args.budget, seeds=args.seeds, tracking_uri=args.tracking_uri,
                     experiment=args.experiment, out=args.out, name=args.name, threads=args.threads,
                     device=args.device, export_best=args.export_best)
    if args.resume and not (args.preset or args.config):
        from evobench.compare import saved_config
        from evobench.config import validate

        # the saved configuration, with any setting given on the command line (checked equal below)
        saved = saved_config(args.resume).model_dump(mode="json")
        cfg = validate({**saved, **{k: v for k, v in overrides.items() if v is not None}})
    else:
        cfg = build_config(preset=args.preset, config_file=args.config, **overrides)
    tracker_name, tracker = _tracker(args, cfg.tracking_uri, cfg.experiment)
    from evobench.evalcache import open_cache

    try:
        cache = open_cache(args.cache)
    except OSError as e:
        raise ConfigError(f"--cache: {e}") from None
    executor = None
    if args.executor == "ray":
        from evobench.executors import RayExecutor

        try:
            executor = RayExecutor(args.workers, args.address, num_gpus=_gpus_per_worker(cfg.device), cache=None if cache is None
                                   else {"path": str(cache.path), "max_bytes": cache.max_bytes,
                                         "min_seconds": cache.min_seconds})
        except (ImportError, ValueError) as e:
            raise ConfigError(str(e)) from None
    elif args.executor == "ray-candidates":
        from evobench.executors import RayCandidateExecutor

        try:
            executor = RayCandidateExecutor(args.workers, args.address, num_gpus=_gpus_per_worker(cfg.device))
        except (ImportError, ValueError) as e:
            raise ConfigError(str(e)) from None
    elif args.workers != 2 or args.address:
        raise ConfigError("--workers and --address go with --executor ray or ray-candidates")
    try:
        comp = run_comparison(cfg, tracker=tracker, progress=not args.no_progress, resume=args.resume, cache=cache,
                              executor=executor)
    except ConfigError:
        raise  # refused before anything ran: nothing was kept
    except BaseException:
        _partial_note(cfg, args.resume)
        raise
    finally:
        if cache is not None:
            cache.close()
    for w in comp.warnings:
        print(f"evobench: warning: {w}", file=sys.stderr)
    print(format_table(comp))
    if cache is not None:
        hits = sum(r.cache.get("hits", 0) for r in comp.results)
        print(f"evaluation cache: {hits} of {sum(r.evaluations for r in comp.results)} evaluations were hits "
              f"({cache.path})")
    print(f"results: {comp.out_dir}")
    where = getattr(tracker, "tracking_uri", None)
    if where:
        print(f"{tracker_name}: {where} (experiment {cfg.experiment!r})")
    return 0


def _gpus_per_worker(device: str) -> float:
    """One GPU per Ray worker when the comparison runs on CUDA (``auto`` with a GPU present), else none."""
    if device == "cpu":
        return 0.0
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def _partial_note(cfg, resumed: str | None = None) -> None:
    """After a failed or interrupted comparison: where its finished runs were kept, if any."""
    from pathlib import Path

    if resumed and Path(resumed).is_dir():
        kept = [Path(resumed)]
    else:
        kept = sorted(Path(cfg.out).glob(f"{cfg.name}-*.incomplete"), key=lambda p: p.stat().st_mtime)
    if kept:
        print(f"evobench: finished runs kept in {kept[-1]} (`evobench run --resume {kept[-1]}` continues the "
              f"comparison; `evobench report {kept[-1]}` reads its finished runs)", file=sys.stderr)


def _eval(args: argparse.Namespace) -> int:
    from evobench.evaluate import parse_options, run_eval
    from evobench.registry import TASKS

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise ConfigError("--tasks: give at least one task")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(TASKS.unknown_message(unknown[0]))
    options = parse_options(args.option, tasks)
    _, tracker = _tracker(args, args.tracking_uri, args.experiment)

    def show(t: str, r: dict) -> None:  # as soon as the task is scored: language models take minutes
        score = "—" if r["score"] is None else f"{100 * r['score']:.2f}"
        extra = ", ".join(f"{k} {100 * v:.2f}" for k, v in r["metrics"].items() if v is not None and k != r["primary_metric"])
        print(f"{t:<28}{r['primary_metric']} {score}  ({r['examples']} examples{'; ' + extra if extra else ''}; "
              f"{r['wall_time_s']:.0f} s)", flush=True)

    folder, _ = run_eval(args.model, tasks, args.out, split=args.split, limit=args.limit, device=args.device,
                         name=args.name, tracker=tracker, batch_size=args.batch_size, options=options, on_task=show)
    print(f"results: {folder}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from evobench.jsonio import write_json
    from evobench.report import format_table, load_comparison, results_json

    comp = load_comparison(args.paths)
    for w in comp.warnings:
        print(f"evobench: warning: {w}", file=sys.stderr)
    print(format_table(comp))
    if args.json:
        write_json(args.json, results_json(comp))
    if args.plot:
        from evobench.plotting import plot_curves

        curves: dict[str, dict[str, list]] = {}
        for r in comp.results:
            if r.values.size:
                curves.setdefault(r.task, {}).setdefault(r.baseline, []).append(r.best_curve())
        if not curves:
            raise ConfigError("report --plot: the runs carry no fitness records (fitness.npy) to draw")
        plot_curves(curves, args.plot, title=comp.config.name)
    return 0


def _merge(args: argparse.Namespace) -> int:
    from evobench.export import merge_recipe

    sources = {}
    for item in args.sources.split(",") if args.sources else []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--sources: {item!r} is not NAME=FILE")
        sources[name.strip()] = path.strip()
    out = merge_recipe(args.recipe, sources, args.out, base=args.base, merge_seed=args.merge_seed)
    print(f"merged checkpoint: {out}/model.safetensors (recipe and hashes: {out}/recipe.json)")
    return 0


def _results(args: argparse.Namespace) -> int:
    from evobench.gate import check, diff

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if args.command == "check":
        _, tracker = _tracker(args, args.tracking_uri, args.experiment)
        report = check(args.candidate, args.reference, tasks, limit=args.limit, alpha=args.alpha, margin=args.margin,
                       seed=args.seed, out=args.out, device=args.device)
        _log_check(tracker, report)
    else:
        report = diff(args.reference, args.candidate, tasks, alpha=args.alpha, margin=args.margin, seed=args.seed)
    return _gate_report(args, report)


def _log_check(tracker, report: dict) -> None:
    """One tracker run per check: its settings, per task the effect, interval, p-value and verdict, and
    the report (JSON and Markdown) as artifacts."""
    from evobench.gate import markdown

    with tracker.run("check", params={"reference": report["reference"], "candidate": report["candidate"],
                                      "alpha": report["alpha"], "margin_points": report["margin_points"],
                                      "seed": report["seed"]}, tags={"evobench.check": "regression" if
                                                                     report["regression"] else "ok"}):
        metrics = {}
        for v in report["tasks"]:
            metrics.update({f"{v['task']}.effect": v["effect"], f"{v['task']}.ci95_low": v["ci95"][0],
                            f"{v['task']}.ci95_high": v["ci95"][1], f"{v['task']}.p": v["p"],
                            f"{v['task']}.regression": float(v["regression"]),
                            f"{v['task']}.reference": v["reference"], f"{v['task']}.candidate": v["candidate"]})
        tracker.log_metrics(metrics)
        tracker.log_dict(report, "check/report.json")
        tracker.log_text(markdown(report), "check/report.md")


def _gate_report(args: argparse.Namespace, report: dict) -> int:
    from evobench.gate import markdown
    from evobench.jsonio import write_json, write_text

    text = markdown(report)
    print(text, end="")
    if args.json:
        write_json(args.json, report)
    if args.markdown:
        write_text(args.markdown, text)
    return 1 if report["regression"] else 0


def _sync(args: argparse.Namespace) -> int:
    from evobench.tracking import TrackingError
    from evobench.tracking_outbox import OutboxTracker

    try:
        outbox = OutboxTracker.load(args.folder)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    except TrackingError as e:  # the server is still down
        print(f"evobench: {e}; nothing delivered, run sync again later", file=sys.stderr)
        return 1
    total = len(outbox.queue)
    sent = outbox.flush()
    print(f"delivered {sent} of {total} tracking calls to {outbox.tracking_uri} (experiment {outbox.experiment!r})")
    if outbox.queue:
        print(f"evobench: {len(outbox.queue)} calls remain: the server is still unreachable; run sync again later",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from evobench.errors import StartError
    from evobench.registry import RegistryError
    from evobench.spaces.base import SpaceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "list":
            _list(args.what)
            return 0
        if args.command == "report":
            return _report(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "sync":
            return _sync(args)
        if args.command in ("results", "check"):
            return _results(args)
        if args.command == "merge":
            return _merge(args)
        if args.command in ("submit", "leaderboard"):
            from evobench.leaderboard.cli import run as leaderboard

            return leaderboard(args)
        return _run(args)
    except (ConfigError, RegistryError, SpaceError, StartError) as e:
        print(f"evobench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:
        from evobench.tracking import TrackingError
        if isinstance(e, TrackingError):
            print(f"evobench: error: {e}", file=sys.stderr)
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("evobench: interrupted; no complete results written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
