"""``evobench submit`` and ``evobench leaderboard build|verify``.

Exit codes: 0 done (verify: reproduced), 1 the method failed, broke its limits or did not reproduce,
2 bad input (submission, protocol, result file); every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROTOCOL = "leaderboard/protocol.yaml"
RESULTS = "leaderboard/results"
SUBMISSIONS = "leaderboard/submissions"
SITE = "leaderboard/site"
DRY_RUN_BUDGET = 10


def add_parsers(sub) -> None:
    sp = sub.add_parser(
        "submit", help="run a leaderboard submission under the protocol and write its results",
        description="Validate a submission YAML, then run the method on each of its tracks under the protocol "
        "(every seed in its own confined process: writes only in its run folder, no network, time and "
        "memory limits) and write leaderboard/results/<method>/<track>.json. --dry-run: validate, run "
        "the baseline contract suite on the method (confined) and one tiny run; nothing is written.")
    sp.add_argument("file", metavar="FILE", help="the submission YAML (leaderboard/submissions/<method>.yaml)")
    sp.add_argument("--dry-run", action="store_true", help="validate, contract suite, one tiny run; write nothing")
    sp.add_argument("--tracks", help="comma-separated tracks (default: the submission's)")
    sp.add_argument("--protocol", default=PROTOCOL, help=f"protocol file (default: {PROTOCOL})")
    sp.add_argument("--results", default=RESULTS, help=f"results folder (default: {RESULTS})")
    lb = sub.add_parser("leaderboard", help="build the leaderboard site, or verify a result",
                        description="Build the static leaderboard site from result files, or re-run a seed of one.")
    lsub = lb.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND", required=True)
    bp = lsub.add_parser("build", help="regenerate the static site (and the README summary) from the results",
                         description="Rank every track's results (mean test score over seeds; methods the "
                         "protocol's paired test cannot separate share a rank) and write index.html, one page per "
                         "method and summary.md. Edited or stale results are listed as not ranked.")
    bp.add_argument("--results", default=RESULTS, help=f"results folder (default: {RESULTS})")
    bp.add_argument("--protocol", default=PROTOCOL, help=f"protocol file (default: {PROTOCOL})")
    bp.add_argument("--out", default=SITE, help=f"site folder (default: {SITE})")
    bp.add_argument("--readme", help="also put the summary between the leaderboard markers of this Markdown file")
    vp = lsub.add_parser("verify", help="re-run one seed of a result and check it reproduces bit for bit",
                         description="Check a result's hashes, re-run one of its seeds with the method's code and "
                         "compare everything but times. Exit 0: reproduced; 1: not reproduced (or edited, "
                         "stale, or the code changed); 2: bad input.")
    vp.add_argument("result", metavar="RESULT", help="leaderboard/results/<method>/<track>.json")
    vp.add_argument("--seed", type=int, help="the seed to re-run (default: the result's first)")
    vp.add_argument("--submissions", default=SUBMISSIONS, help=f"submissions folder (default: {SUBMISSIONS})")
    vp.add_argument("--protocol", default=PROTOCOL, help=f"protocol file (default: {PROTOCOL})")


def run(args: argparse.Namespace) -> int:
    from evobench.leaderboard.remote import MethodError
    from evobench.leaderboard.results import ResultError
    from evobench.leaderboard.submission import SubmissionError
    from evobench.leaderboard.yamlsafe import YamlError

    try:
        if args.command == "submit":
            return _submit(args)
        if args.leaderboard_command == "build":
            return _build(args)
        return _verify(args)
    except MethodError as e:
        print(f"evobench: {e}", file=sys.stderr)
        return 1
    except (SubmissionError, YamlError, ResultError) as e:
        print(f"evobench: error: {e}", file=sys.stderr)
        return 2


def _tracks(args, sub, protocol) -> list[str]:
    from evobench.leaderboard.submission import SubmissionError

    tracks = [t for t in args.tracks.split(",") if t] if args.tracks else list(sub.tracks)
    for t in tracks:
        if t not in sub.tracks:
            raise SubmissionError(f"{args.file}: track {t!r} is not one of the submission's ({', '.join(sub.tracks)})")
        if t not in protocol.tracks:
            raise SubmissionError(f"{args.file}: tracks: {t!r} is not a track of the protocol "
                                  f"({', '.join(protocol.tracks)})")
    return tracks


def _submit(args: argparse.Namespace) -> int:
    from evobench.leaderboard.protocol import load_protocol
    from evobench.leaderboard.submission import load_submission, resolve_code
    from evobench.leaderboard.submit import build_problem, run_seed, run_track, write_result

    path = Path(args.file)
    sub = load_submission(path)
    protocol = load_protocol(args.protocol)
    tracks = _tracks(args, sub, protocol)
    code = resolve_code(sub, path.parent, str(path))
    print(f"{sub.name} {sub.version}: {code.source.name} sha256 {code.sha256[:12]}…, tracks {', '.join(tracks)}")
    if args.dry_run:
        track = protocol.track(tracks[0])
        print(contract_suite(sub, code, track.limits.memory_mb, max(300.0, track.limits.method_seconds)))
        budget = min(DRY_RUN_BUDGET, track.budget)
        run = run_seed(sub, code, tracks[0], track, build_problem(track), track.seeds[0], budget=budget)
        print(f"tiny run on {tracks[0]} (seed {track.seeds[0]}, {budget} evaluations): test score "
              f"{_fmt(run['test_score'])}, {run['failed']} failed, method time {run['method_time_s']:.2f} s")
        print("dry run passed: nothing was written")
        return 0
    for name in tracks:
        def on_seed(seed, run, name=name):
            print(f"  {name} seed {seed}: test score {_fmt(run['test_score'])} "
                  f"({run['evaluations']} evaluations, {run['wall_time_s']:.1f} s)", flush=True)

        data = run_track(sub, code, protocol, name, on_seed=on_seed)
        print(f"wrote {write_result(args.results, data)}")
    return 0


def contract_suite(sub, code, memory_mb: int, seconds: float) -> str:
    """Run :class:`evobench.contract.BaselineContract` on the method in a confined process."""
    from evobench.leaderboard.remote import MethodError, child_env

    spec = json.dumps({**code.worker_header(), "config": sub.hyperparameters})
    with tempfile.TemporaryDirectory(prefix=f".contract-{sub.name}-") as folder:
        try:
            done = subprocess.run([sys.executable, "-m", "evobench.leaderboard.worker", "--contract", folder,
                                   str(memory_mb), spec], capture_output=True, text=True, timeout=seconds,
                                  cwd=folder, env=child_env(folder))
        except subprocess.TimeoutExpired:
            raise MethodError(f"method {sub.name!r}: the contract suite exceeded {seconds:g} s") from None
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    summary = lines[-1] if lines else (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        failed = next((ln for ln in lines if ln.startswith("FAILED")), "")
        raise MethodError(f"method {sub.name!r} fails the baseline contract suite: {summary}"
                          + (f" ({failed.removeprefix('FAILED ')})" if failed else ""))
    return f"contract suite: {summary}"


def _fmt(v) -> str:
    return "none" if v is None else f"{v:.4f}"


def _build(args: argparse.Namespace) -> int:
    from evobench.leaderboard.protocol import load_protocol
    from evobench.leaderboard.results import load_results
    from evobench.leaderboard.site import build_site, summary_markdown, update_readme

    protocol = load_protocol(args.protocol)
    results = load_results(args.results)
    summary = build_site(results, protocol, Path(args.out))
    for track, names in summary["tracks"].items():
        print(f"{track}: {len(names)} ranked ({', '.join(names)})")
    for path, reason in summary["not_ranked"]:
        print(f"not ranked: {path}: {reason}")
    if args.readme:
        changed = update_readme(Path(args.readme), summary_markdown(results, protocol))
        print(f"{args.readme}: {'updated' if changed else 'unchanged'}")
    print(f"site written to {args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from evobench.leaderboard.protocol import load_protocol
    from evobench.leaderboard.results import load_result
    from evobench.leaderboard.submission import SubmissionError, load_submission, resolve_code
    from evobench.leaderboard.verify import precheck, verify_seed

    loaded = load_result(args.result)
    name = loaded.result.method.name
    sub_path = Path(args.submissions) / f"{name}.yaml"
    if not sub_path.is_file():
        raise SubmissionError(f"{sub_path}: no submission for method {name!r} (give --submissions)")
    sub = load_submission(sub_path)
    code = resolve_code(sub, sub_path.parent, str(sub_path))
    protocol = load_protocol(args.protocol)
    problem = None
    if loaded.result.track in protocol.tracks:
        from evobench.leaderboard.submit import build_problem

        problem = build_problem(protocol.track(loaded.result.track))
    problems = precheck(loaded, protocol, code, problem)
    if problems:
        print(f"evobench: {args.result} cannot be verified: {'; '.join(problems)}", file=sys.stderr)
        return 1
    try:
        seed, diff = verify_seed(loaded, sub, code, protocol, args.seed, problem=problem)
    except ValueError as e:
        raise SubmissionError(str(e)) from None
    if diff:
        print(f"{args.result}: seed {seed} does NOT reproduce: {', '.join(diff)} differ", file=sys.stderr)
        return 1
    print(f"{args.result}: seed {seed} reproduces bit for bit (test score, per-example scores, curve, recipe)")
    return 0
