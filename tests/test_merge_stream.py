"""Merging checkpoints on disk tensor by tensor: the same tensors as an in-memory merge, the
safetensors format both ways, clear errors for broken files, no half-written output, and the peak
memory of a 3-model merge measured against the model size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from evobench.merge.ops import merge_state_dicts
from evobench.merge.stream import SafetensorsFile, SafetensorsWriter, merge_files


def _models(k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"emb.weight": (50, 8), "l0.weight": (8, 8), "l0.bias": (8,), "norm": (8,), "step": ()}
    base = {n: torch.randn(s, generator=g) for n, s in shapes.items()}
    base["ids"] = torch.arange(6, dtype=torch.int64)  # an integer buffer: passed through
    base["half"] = torch.randn(4, 3, generator=g).to(torch.bfloat16)
    models = [{n: (t + 0.1 * torch.randn(t.shape, generator=g).to(t.dtype) if t.is_floating_point() else t)
               for n, t in base.items()} for _ in range(k)]
    return base, models


def test_reading_gives_back_every_tensor_exactly(tmp_path):
    base, _ = _models(1)
    save_file(base, str(tmp_path / "m.safetensors"), metadata={"k": "v"})
    f = SafetensorsFile(tmp_path / "m.safetensors")
    assert sorted(f) == sorted(load_file(str(tmp_path / "m.safetensors"))) and f.metadata == {"k": "v"}
    for name, t in base.items():
        got = f[name]
        assert got.dtype == t.dtype and got.shape == t.shape and torch.equal(got, t)


@pytest.mark.parametrize("op,kw,needs_base", [
    ("linear", {"weights": [0.3, 0.7]}, False), ("task_arithmetic", {"weights": [0.5, 1.0]}, True),
    ("ties", {"weights": [1.0, 0.6], "densities": [0.5, 0.8]}, True),
    ("dare_ties", {"weights": [1.0, 0.6], "densities": [0.5, 0.8]}, True),
])
def test_a_streamed_merge_equals_the_in_memory_one(tmp_path, op, kw, needs_base):
    from evobench.spaces.ps import mask_seed

    base, models = _models(2)
    paths = []
    for i, m in enumerate(models):
        save_file(m, str(tmp_path / f"m{i}.safetensors"))
        paths.append(tmp_path / f"m{i}.safetensors")
    save_file(base, str(tmp_path / "base.safetensors"))
    out = merge_files(op, paths, tmp_path / "out" / "merged.safetensors",
                      base=tmp_path / "base.safetensors" if needs_base else None, merge_seed=3,
                      metadata={"recipe": "test"}, **kw)
    extra = {}
    if op == "dare_ties":
        extra["generator"] = {n: [torch.Generator().manual_seed(mask_seed(3, n, j)) for j in range(2)] for n in base}
    want = merge_state_dicts(op, base if needs_base else None, models, **kw, **extra)
    got = load_file(str(out))  # the reference reader reads what was streamed
    assert sorted(got) == sorted(base)
    for n, t in want.items():
        assert got[n].dtype == base[n].dtype and torch.equal(got[n], t.to(base[n].dtype)), n
    assert json.loads(out.read_bytes()[8:8 + int.from_bytes(out.read_bytes()[:8], "little")])["__metadata__"] == \
        {"recipe": "test"}
    assert [p.name for p in out.parent.iterdir()] == ["merged.safetensors"]


def test_broken_files_are_one_line_errors_naming_the_file(tmp_path):
    base, models = _models(2)
    save_file(models[0], str(tmp_path / "a.safetensors"))
    data = (tmp_path / "a.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-40])
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    (tmp_path / "tiny.safetensors").write_bytes(b"abc")
    other = dict(models[1])
    other["l0.weight"] = torch.zeros(8, 9)
    save_file(other, str(tmp_path / "shape.safetensors"))
    fewer = {k: v for k, v in models[1].items() if k != "norm"}
    save_file(fewer, str(tmp_path / "fewer.safetensors"))
    for name, msg in (("cut", "truncated?"), ("junk", "is not a safetensors file"), ("tiny", "shorter than"),
                      ("missing", "cannot read")):
        with pytest.raises(ValueError, match=msg) as e:
            SafetensorsFile(tmp_path / f"{name}.safetensors")
        assert f"{name}.safetensors" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"tensor 'l0.weight' has shape \(8, 9\)"):
        merge_files("linear", [tmp_path / "a.safetensors", tmp_path / "shape.safetensors"], tmp_path / "o.safetensors",
                    weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="its tensors differ"):
        merge_files("linear", [tmp_path / "a.safetensors", tmp_path / "fewer.safetensors"], tmp_path / "o.safetensors",
                    weights=[0.5, 0.5])
    assert not list(tmp_path.glob("o.safetensors*")) and not list(tmp_path.glob(".o.safetensors*"))


def test_an_interrupted_write_leaves_no_file_that_reads_as_complete(tmp_path):
    w = SafetensorsWriter(tmp_path / "x.safetensors", [("a", torch.float32, (2,)), ("b", torch.float32, (3,))])
    w.write("a", torch.ones(2))
    with pytest.raises(ValueError, match="1 declared tensors were not written"):
        w.close()
    assert list(tmp_path.iterdir()) == []
    w = SafetensorsWriter(tmp_path / "x.safetensors", [("a", torch.float32, (2,))])
    with pytest.raises(ValueError, match="expected 'a'"):
        w.write("b", torch.ones(2))
    w.abort()
    assert list(tmp_path.iterdir()) == []


MIB = 1 << 20


@pytest.mark.timeout(600)
def test_peak_memory_of_a_three_model_merge_is_a_few_tensors_not_the_models(tmp_path):
    """3 sources + base of 96 MiB each (12 tensors of 8 MiB): the merge's peak resident memory above
    the process's own (torch imported) is measured in a fresh process; the models' total is 384 MiB."""
    g = torch.Generator().manual_seed(0)
    n_tensors, tensor_mib = 12, 8
    names = [f"layer{i}.weight" for i in range(n_tensors)]
    for name in ("base", "a", "b", "c"):
        save_file({n: torch.randn(tensor_mib * MIB // 4, generator=g) for n in names}, str(tmp_path / f"{name}.safetensors"))
    code = textwrap.dedent("""
        import json, resource, sys
        import torch
        from evobench.merge.stream import merge_files
        def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        before = peak()
        d = sys.argv[1]
        merge_files("task_arithmetic", [f"{d}/a.safetensors", f"{d}/b.safetensors", f"{d}/c.safetensors"],
                    f"{d}/out.safetensors", base=f"{d}/base.safetensors", weights=[0.5, 0.3, 0.2])
        print(json.dumps({"before": before, "after": peak()}))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    grown = (r["after"] - r["before"]) / MIB
    # one tensor of each of the 3 sources and the base, the merged tensor and the op's temporaries
    # (task_arithmetic: a few tensor-sized buffers): well under one model (96 MiB), let alone four
    assert grown <= 8 * tensor_mib + 16, f"the merge grew the resident memory by {grown:.0f} MiB"
    merged = SafetensorsFile(tmp_path / "out.safetensors")
    a, b, c, base = (SafetensorsFile(tmp_path / f"{n}.safetensors") for n in ("a", "b", "c", "base"))
    n = names[5]
    want = base[n] + 0.5 * (a[n] - base[n]) + 0.3 * (b[n] - base[n]) + 0.2 * (c[n] - base[n])
    assert torch.allclose(merged[n], want, atol=1e-5)
