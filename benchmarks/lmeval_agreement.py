"""Per-example agreement of evobench's JP-LMEH subtasks with lm-evaluation-harness (run by hand).

Not part of the test suite. Both sides score the same model on the same documents with the same
few-shot pool: the JGLUE validation files' last 100 documents are the pool (JSQuAD counted per
question), written out as the ``train`` split that lm-eval draws its shots from, and the other
documents as its ``validation`` split; MGSM's eight exemplars are its ``train`` split. lm-eval runs
its own ``japanese_leaderboard`` task configs (included, with only the data source replaced), in a
separate environment where ``lm-eval[japanese-leaderboard,hf]`` is installed.

Steps (default: all of them)::

    python benchmarks/lmeval_agreement.py --realdata ../shared/realdata --model /tmp/smol/hf \\
        --lm-eval /path/to/venv-lmeval/bin/lm_eval --workdir /tmp/agree --limit 20

``prepare`` writes the data files and task configs; ``prompts`` (no model, seconds) has lm-eval
build its requests for the first ``--limit`` documents and counts the prompts and continuations
evobench builds identically; ``lmeval`` runs lm-eval (``--log_samples``); ``evobench`` scores the
same documents with evobench; ``compare`` prints per task: documents compared, identical prompts,
identical predictions (chosen answer, or raw completion), and each difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# task key -> (evobench subtask name, lm-eval config file name)
TASKS = {
    "jcqa": ("jp-lmeh-jcqa", "ja_leaderboard_jcommonsenseqa.yaml"),
    "jnli": ("jp-lmeh-jnli", "ja_leaderboard_jnli.yaml"),
    "jsquad": ("jp-lmeh-jsquad", "ja_leaderboard_jsquad.yaml"),
    "mgsm": ("jp-lmeh-mgsm", "ja_leaderboard_mgsm.yaml"),
}
PREFIX = "evobench_agree_"


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _lmeval_task_dir(lm_eval: str) -> Path:
    """The installed ``japanese_leaderboard`` folder of the lm-eval next to ``lm_eval``'s python."""
    python = Path(lm_eval).parent / "python"
    out = subprocess.run([str(python), "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Path(out) / "tasks" / "japanese_leaderboard"


def prepare(args) -> None:
    from evobench.lmdata import (
        load_jcommonsenseqa,
        load_jnli,
        load_jsquad,
        load_mgsm,
        load_mgsm_exemplars,
        split_fewshot_pool,
    )

    real, work = Path(args.realdata), Path(args.workdir)
    jglue = real / "jglue"
    sources = {"jcqa": load_jcommonsenseqa(jglue), "jnli": load_jnli(jglue), "jsquad": load_jsquad(jglue)}
    data_files = {}
    for key, rows in sources.items():
        evaluated, pool = split_fewshot_pool(rows)
        _write_jsonl(work / "data" / key / "train.jsonl", pool)
        _write_jsonl(work / "data" / key / "validation.jsonl", evaluated)
        data_files[key] = {"train": str(work / "data" / key / "train.jsonl"),
                           "validation": str(work / "data" / key / "validation.jsonl")}
    _write_jsonl(work / "data" / "mgsm" / "train.jsonl", load_mgsm_exemplars(real / "mgsm"))
    _write_jsonl(work / "data" / "mgsm" / "test.jsonl", load_mgsm(real / "mgsm"))
    data_files["mgsm"] = {"train": str(work / "data" / "mgsm" / "train.jsonl"),
                          "test": str(work / "data" / "mgsm" / "test.jsonl")}
    configs = _lmeval_task_dir(args.lm_eval)
    (work / "tasks").mkdir(parents=True, exist_ok=True)
    for key, (_, yaml_name) in TASKS.items():
        files = "\n".join(f"    {split}: {path}" for split, path in data_files[key].items())
        text = (f"include: {configs / yaml_name}\ntask: {PREFIX}{key}\ndataset_path: json\ndataset_name: null\n"
                f"dataset_kwargs:\n  data_files:\n{files}\n")
        (work / "tasks" / f"{PREFIX}{key}.yaml").write_text(text, encoding="utf-8")
    print(f"prepared {work / 'data'} and {work / 'tasks'}")


def run_lmeval(args) -> None:
    work = Path(args.workdir)
    tasks = ",".join(PREFIX + k for k in args.tasks)
    cmd = [args.lm_eval, "--model", "hf", "--model_args", f"pretrained={args.model},dtype=float32",
           "--tasks", tasks, "--include_path", str(work / "tasks"), "--limit", str(args.limit),
           "--batch_size", "1", "--device", "cpu", "--log_samples", "--output_path", str(work / "lmeval")]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    print(f"lm-eval: {time.perf_counter() - start:.0f} s")


def run_evobench(args) -> None:
    import torch

    from evobench.registry import TASKS as REGISTRY

    torch.set_num_threads(args.threads)
    path = Path(args.workdir) / "evobench.json"
    for key in args.tasks:
        name = TASKS[key][0]
        start = time.perf_counter()
        problem = REGISTRY.get(name)(models=[args.model], data_dir=args.realdata, batch_size=args.batch_size)
        model = problem.pool.family.build(problem.pool.sources[0][1])
        result = problem.task.evaluate(model, "test", limit=args.limit)
        done = {"records": result.predictions, "scores": result.scores.tolist(),
                "seconds": time.perf_counter() - start}
        print(f"evobench {name}: {result.primary:.3f} in {done['seconds']:.0f} s")
        out = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}  # other tasks kept
        path.write_text(json.dumps({**out, key: done}, ensure_ascii=False, indent=1), encoding="utf-8")


LMEVAL_REQUESTS = """
import json, sys
from lm_eval.tasks import TaskManager, get_task_dict
include, names, limit, out = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
result = {}
for name, task in get_task_dict(names, TaskManager(include_path=include)).items():
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    result[name] = [[i.doc_id, list(i.arguments)] for i in task.instances]
json.dump(result, open(out, "w"), ensure_ascii=False, default=str)
"""


def check_prompts(args) -> None:
    from evobench.tasks.jp_lmeh.base import LMEHTask
    from evobench.tasks.jp_lmeh.suite import MODULES

    work = Path(args.workdir)
    python = Path(args.lm_eval).parent / "python"
    out = work / "lmeval_requests.json"
    names = ",".join(PREFIX + k for k in args.tasks)
    subprocess.run([str(python), "-c", LMEVAL_REQUESTS, str(work / "tasks"), names, str(args.limit), str(out)],
                   check=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    theirs = json.loads(out.read_text(encoding="utf-8"))
    for key in args.tasks:
        module = MODULES[key]
        docs, shots = module.load(args.realdata)
        ours = LMEHTask(module.SPEC, docs, shots, engine=None).prompts("test", args.limit)
        by_doc: dict[int, list] = {}
        for doc_id, arguments in theirs[PREFIX + key]:
            by_doc.setdefault(doc_id, []).append(arguments)
        same_prompt = same_rest = 0
        for d, requests in sorted(by_doc.items()):
            same_prompt += all(r[0] == ours[d] for r in requests)
            if module.SPEC.choices:
                expected = [module.SPEC.target_delimiter + c for c in module.SPEC.choices(docs["test"][d])]
                same_rest += [r[1] for r in requests] == expected
            else:
                same_rest += list(requests[0][1].get("until", [])) == ["\n\n"]
        what = "continuations" if module.SPEC.choices else "stop strings"
        print(f"{key}: {len(by_doc)} documents, identical prompts {same_prompt}, identical {what} {same_rest}")


def _lmeval_samples(work: Path, key: str) -> list[dict]:
    files = sorted((work / "lmeval").rglob(f"samples_{PREFIX}{key}_*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no lm-eval samples for {key} under {work / 'lmeval'}")
    rows = [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["doc_id"])


def compare(args) -> None:
    work = Path(args.workdir)
    ours = json.loads((work / "evobench.json").read_text(encoding="utf-8"))
    from evobench.scoring import prompt_hash

    for key in args.tasks:
        theirs, mine = _lmeval_samples(work, key), ours[key]["records"]
        n = min(len(theirs), len(mine))
        same_prompt = same_pred = 0
        diffs = []
        worst = 0.0
        for t, m in zip(theirs[:n], mine[:n], strict=True):
            context = t["arguments"]["gen_args_0"]["arg_0"]
            same_prompt += prompt_hash(context) == m["prompt_sha256"]
            if "choices" in m:  # log-likelihood of choices: the chosen index
                lls = [float(r[0][0]) for r in t["resps"]]
                pred = max(range(len(lls)), key=lls.__getitem__)
                worst = max([worst] + [abs(a - b) for a, b in zip(lls, m["logprobs"], strict=True)])
                ok = pred == m["prediction"]
                detail = f"lm-eval {pred} ({[round(x, 4) for x in lls]}) vs evobench {m['prediction']} " \
                         f"({[round(x, 4) for x in m['logprobs']]})"
            else:  # generation: the raw completion (cut at the stop string)
                pred = t["resps"][0][0]
                ok = pred == m["completion"]
                detail = f"lm-eval {pred!r} vs evobench {m['completion']!r}"
            same_pred += ok
            if not ok:
                diffs.append(f"doc {t['doc_id']}: {detail}")
        score_t = sum(float(t.get("acc", t.get("exact_match", 0.0))) for t in theirs[:n])
        score_m = sum(ours[key]["scores"][:n])
        print(f"{key}: {n} documents, identical prompts {same_prompt}/{n}, identical predictions {same_pred}/{n}, "
              f"score lm-eval {score_t:.0f}/{n} evobench {score_m:.0f}/{n}"
              + (f", largest log-likelihood difference {worst:.2e}" if worst else ""))
        for d in diffs:
            print("   ", d)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("step", nargs="?", default="all", choices=["all", "prepare", "prompts", "lmeval", "evobench", "compare"])
    p.add_argument("--realdata", required=True, help="folder with jglue/ and mgsm/ (the released files)")
    p.add_argument("--model", required=True, help="a local Hugging Face model directory (safetensors)")
    p.add_argument("--lm-eval", default="lm_eval", help="the lm_eval executable of the separate environment")
    p.add_argument("--workdir", default="/tmp/evobench-lmeval-agreement")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of " + ",".join(TASKS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    steps = ["prepare", "prompts", "lmeval", "evobench", "compare"] if args.step == "all" else [args.step]
    run = {"prepare": prepare, "prompts": check_prompts, "lmeval": run_lmeval, "evobench": run_evobench,
           "compare": compare}
    for step in steps:
        run[step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
