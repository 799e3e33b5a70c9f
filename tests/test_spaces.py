"""Merge spaces on the digits problems: params, PS (DARE-TIES knobs), DFS (layer paths), PS+DFS."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evobench.errors import CandidateError
from evobench.models.base import ModelPool
from evobench.models.mlp import PathMLP
from evobench.spaces import SpaceError, make_space
from evobench.spaces.dfs import DFSSpace, PSDFSSpace
from evobench.spaces.params import ParamSpace
from evobench.spaces.ps import PSSpace, mask_seed
from evobench.task import SEARCH
from evobench.tasks import digits
from evobench.tasks.digits import load_digits_split

ON, OFF = 0.75, 0.25


@pytest.fixture(scope="module")
def spec():
    return digits.specialists()


@pytest.fixture(scope="module")
def blocks():
    return digits.specialists_blocks()


@pytest.fixture(scope="module")
def scratch():
    return digits.scratch()


@pytest.fixture(scope="module")
def x_search():
    return load_digits_split()[SEARCH][0]


def flat(family, state) -> torch.Tensor:
    return family.flatten(state)


def logits(model, x):
    with torch.no_grad():
        return model(x)


def tensors(model):
    """All weight tensors of a built MLP / PathMLP, for exact comparison."""
    if isinstance(model, PathMLP):
        return [*model.stem, *[t for b in model.blocks for t in b], *model.head]
    return [model.w1, model.b1, model.w2, model.b2]


def same_model(m1, m2) -> bool:
    t1, t2 = tensors(m1), tensors(m2)
    return len(t1) == len(t2) and all(torch.equal(a, b) for a, b in zip(t1, t2, strict=True))


# --- ParamSpace ---------------------------------------------------------------------------------------

def test_param_space_roundtrip_and_scores(spec, x_search):
    space = make_space("params", spec)
    assert isinstance(space, ParamSpace) and space.kind == "params"
    fam = spec.pool.family
    assert space.dim == fam.n_params == 19210
    x0 = space.initial(np.random.default_rng(0))
    assert x0.shape == (2, 19210) and x0.dtype == np.float32
    for g, (_, src) in zip(x0, spec.pool.sources, strict=True):
        np.testing.assert_array_equal(g, flat(fam, src).numpy())
        st = space.state(g)
        for k in fam.param_names:
            assert torch.equal(st[k], src[k])
        built = space.build(g)
        ref = fam.build(src)
        np.testing.assert_array_equal(spec.task.evaluate(built, SEARCH).scores,
                                      spec.task.evaluate(ref, SEARCH).scores)
        torch.testing.assert_close(logits(built, x_search), logits(ref, x_search), rtol=0, atol=0)


def test_param_space_build_reuses_one_buffer_with_the_float32_cast(spec):
    """A build writes the genome, rounded to float32 exactly as state() does, into the space's one
    buffer: the next build overwrites the previous model (one merged model alive at once), while
    state_dict() stays a copy to keep."""
    space = make_space("params", spec)
    rng = np.random.default_rng(3)
    g1, g2 = rng.standard_normal((2, space.dim)) * 0.1
    kept = space.state_dict(g1)
    m1 = space.build(g1)
    w1 = m1.w1.clone()
    assert torch.equal(w1, kept["fc1.weight"])
    assert w1.dtype == torch.float32
    np.testing.assert_array_equal(w1.numpy().ravel(), g1[:64 * 256].astype(np.float32))
    m2 = space.build(g2)
    assert m2.w1.data_ptr() == m1.w1.data_ptr()  # the same buffer ...
    assert torch.equal(m1.w1, space.state(g2)["fc1.weight"])  # ... so the first model now holds g2
    assert torch.equal(kept["fc1.weight"], w1)  # the kept state dict is untouched
    with pytest.raises(ValueError, match="19210 genes"):
        space.build(g1[:10])


def test_param_space_is_unbounded(spec):
    space = make_space("params", spec)
    assert np.all(space.lower == -np.inf) and np.all(space.upper == np.inf)
    assert not space.bounded
    g = np.full(space.dim, 123.0)
    np.testing.assert_array_equal(space.clip(g), g)


def test_param_space_sample_without_sampler_raises(spec):
    with pytest.raises(SpaceError, match="sampler"):
        make_space("params", spec).sample(np.random.default_rng(0), 2)


def test_param_space_from_scratch(scratch):
    space = make_space("params", scratch)
    s = space.sample(np.random.default_rng(0), 3)
    assert s.shape == (3, 19210)
    assert np.std(s) == pytest.approx(0.01, rel=0.03)
    np.testing.assert_array_equal(s, space.sample(np.random.default_rng(0), 3))
    x0 = space.initial(np.random.default_rng(1))
    assert x0.shape == (2, 19210) and not np.array_equal(x0[0], x0[1])


def test_param_space_decode_is_json(spec):
    space = make_space("params", spec)
    g = space.initial(np.random.default_rng(0))[0]
    d = json.loads(space.recipe_json(g))
    assert d["kind"] == "params" and d["n_params"] == 19210
    assert d["norm"] == pytest.approx(float(np.linalg.norm(g)))
    assert d["sha256"] != space.decode(g + 1.0)["sha256"]


# --- PSSpace ------------------------------------------------------------------------------------------

def test_ps_space_dim_and_decode_order(spec):
    space = make_space("ps", spec)
    assert isinstance(space, PSSpace) and space.dim == 4
    assert space.bounded
    np.testing.assert_array_equal(space.lower, 0.0)
    np.testing.assert_array_equal(space.upper, 1.0)
    # genome layout: [weight_A, weight_B, density_A, density_B]; weight in [0, 1], density in [0.01, 1]
    d = space.decode(np.array([0.2, 0.4, 0.0, 1.0]))
    assert d["merge_method"] == "dare_ties" and d["base"] == "zeros" and d["granularity"] == "model"
    (group,) = d["groups"]
    assert group["models"] == [
        {"model": "digits-0to4", "weight": 0.2, "density": 0.01},
        {"model": "digits-5to9", "weight": 0.4, "density": 1.0},
    ]
    kw = space.knob_kwargs(np.array([0.5, 1.0, 0.5, 0.25]))
    assert kw["weights"] == pytest.approx([0.5, 1.0])
    assert kw["densities"] == pytest.approx([0.01 + 0.99 * 0.5, 0.01 + 0.99 * 0.25])
    json.loads(space.recipe_json(np.array([0.2, 0.4, 0.0, 1.0])))


def test_ps_space_genes_are_clipped(spec):
    space = make_space("ps", spec)
    kw = space.knob_kwargs(np.array([1.5, -0.5, 2.0, -1.0]))
    assert kw["weights"] == [1.0, 0.0]
    assert kw["densities"] == pytest.approx([1.0, 0.01])


def test_ps_space_deterministic_and_seeded(spec):
    g = np.array([0.7, 0.6, 0.3, 0.5])  # densities < 1: DARE drops at random
    s0 = make_space("ps", spec, seed=0)
    a, b = s0.build(g), s0.build(g)
    assert same_model(a, b)
    assert same_model(a, make_space("ps", spec, seed=0).build(g))
    assert not same_model(a, make_space("ps", spec, seed=1).build(g))
    assert not same_model(a, make_space("ps", spec, merge_seed=5).build(g))  # explicit option wins


def test_mask_seed_is_stable_and_distinct():
    assert mask_seed(0, "fc1.weight", 0) == mask_seed(0, "fc1.weight", 0)
    seeds = {mask_seed(s, t, m) for s in (0, 1) for t in ("fc1.weight", "fc2.weight") for m in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)


def test_ps_masks_of_one_model_ignore_the_other_models_density(spec):
    space = make_space("ps", spec, op="dare")  # no sign election: model 1's sparse vector shows as is
    # genome [w_A, w_B, d_A, d_B]; w_A = 0, so the merge is w_B * drop_B(theta_B) on a zero base
    states = [space.merged_state(np.array([0.0, 0.8, dA, 0.4])) for dA in (0.2, 0.7, 1.0)]
    for st in states[1:]:
        for k in spec.pool.family.param_names:
            assert torch.equal(st[k], states[0][k]), k
    assert any(torch.count_nonzero(v) < v.numel() for v in states[0].values())  # drops happened


def test_ps_masks_of_one_tensor_ignore_the_other_tensors_knobs(spec):
    space = make_space("ps", spec, op="dare", granularity="tensor")
    names = spec.pool.family.param_names
    assert names[0] == "fc1.weight"
    base = np.tile([0.9, 0.6, 0.3, 0.4], len(names)).astype(float)
    changed = base.copy()
    changed[0:4] = [0.2, 0.1, 1.0, 1.0]  # fc1.weight: other weights, both densities exactly 1
    a, b = space.merged_state(base), space.merged_state(changed)
    assert not torch.equal(a["fc1.weight"], b["fc1.weight"])
    for k in names[1:]:
        assert torch.equal(a[k], b[k]), k


def test_ps_masks_depend_on_merge_seed_only(spec):
    g = np.array([1.0, 0.0, 0.5, 0.5])  # A alone, density ~0.5
    def masks(seed):
        st = make_space("ps", spec, op="dare", merge_seed=seed).merged_state(g)
        return {k: v != 0 for k, v in st.items()}
    m0, m0b, m1 = masks(0), masks(0), masks(1)
    assert all(torch.equal(m0[k], m0b[k]) for k in m0)
    assert all(not torch.equal(m0[k], m1[k]) for k in m0 if m0[k].numel() > 1)


def test_ps_space_zero_weights_give_the_zero_base(spec):
    space = make_space("ps", spec)
    st = space.merged_state(np.array([0.0, 0.0, 0.3, 0.9]))
    for k, v in st.items():
        assert torch.count_nonzero(v) == 0, k
    m = space.build(np.array([0.0, 0.0, 0.3, 0.9]))
    assert all(torch.count_nonzero(t) == 0 for t in tensors(m))


def test_ps_space_hand_merges(spec):
    fam = spec.pool.family
    space = make_space("ps", spec)
    (_, a), (_, b) = spec.pool.sources
    # weight 1 for A, 0 for B, density 1: no drops, B contributes nothing -> exactly A
    st = space.merged_state(np.array([1.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(flat(fam, st), flat(fam, a))
    # weights 0.5 / 0.5, density 1: TIES sign election, disjoint sum over a zero base
    st = space.merged_state(np.array([0.5, 0.5, 1.0, 1.0]))
    va, vb = 0.5 * flat(fam, a).double().numpy(), 0.5 * flat(fam, b).double().numpy()
    elected = np.sign(va + vb)
    want = np.where(np.sign(va) == elected, va, 0.0) + np.where(np.sign(vb) == elected, vb, 0.0)
    np.testing.assert_allclose(flat(fam, st).double().numpy(), want, rtol=1e-6, atol=1e-7)


def test_ps_space_density_drops_and_rescales(spec):
    fam = spec.pool.family
    space = make_space("ps", spec)
    (_, a), _ = spec.pool.sources
    st = flat(fam, space.merged_state(np.array([1.0, 0.0, 0.5, 1.0])))  # density_A = 0.505
    fa = flat(fam, a)
    kept = st != 0
    frac = float(kept.float().mean())
    assert 0.47 < frac < 0.54
    torch.testing.assert_close(st[kept], fa[kept] / 0.505)


def test_ps_space_tensor_granularity(spec):
    fam = spec.pool.family
    space = make_space("ps", spec, granularity="tensor")
    n_tensors = len(fam.param_names)
    assert space.dim == 4 * n_tensors == 16
    assert [g["tensors"] for g in space.decode(np.full(16, 0.5))["groups"]] == fam.param_names
    (_, a), (_, b) = spec.pool.sources
    # per tensor group [w_A, w_B, d_A, d_B]: fc1.* from A only, fc2.* from B only, no drops
    g = np.concatenate([[1, 0, 1, 1], [1, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]]).astype(float)
    st = space.merged_state(g)
    for k in fam.param_names:
        torch.testing.assert_close(st[k], (a if k.startswith("fc1") else b)[k])


def test_ps_space_bad_granularity(spec):
    with pytest.raises(SpaceError, match="granularity"):
        make_space("ps", spec, granularity="layer")


def test_ps_space_needs_two_sources(spec):
    (name, a), _ = spec.pool.sources
    with pytest.raises(SpaceError, match="2"):
        PSSpace(ModelPool(spec.pool.family, sources=[(name, a)]))
    with pytest.raises(SpaceError):
        DFSSpace(ModelPool(spec.pool.family, sources=[(name, a)]))


def test_ps_space_other_ops(spec):
    fam = spec.pool.family
    (_, a), (_, b) = spec.pool.sources
    lin = make_space("ps", spec, op="linear")
    assert lin.dim == 2  # one weight per model, no base
    st = lin.merged_state(np.array([1.0, 1.0]))
    torch.testing.assert_close(flat(fam, st), (flat(fam, a) + flat(fam, b)) / 2)
    with pytest.raises(SpaceError, match="per-model"):
        make_space("ps", spec, op="slerp")


# --- DFSSpace ------------------------------------------------------------------------------------------

M, R = 8, 3
T = M * R


def dfs_genome(on_slots=(), scale_genes=None) -> np.ndarray:
    g = np.full(T + M * M, OFF)
    g[T:] = 0.5
    g[list(on_slots)] = ON
    for (i, j), u in (scale_genes or {}).items():
        g[T + i * M + j] = u
    return g


def test_dfs_space_dim_and_segments(blocks):
    space = make_space("dfs", blocks)
    assert isinstance(space, DFSSpace) and space.kind == "dfs"
    assert space.dim == T + M * M == 88
    assert space.segments == {"slots": slice(0, T), "scales": slice(T, 88)}
    assert space.bounded
    assert make_space("dfs", blocks, repeats=1).dim == M + M * M


def test_dfs_initial_reproduces_specialist_a(blocks, x_search):
    space = make_space("dfs", blocks)
    x0 = space.initial(np.random.default_rng(0))
    assert x0.shape == (1, 88)
    np.testing.assert_array_equal(x0[0], dfs_genome(range(4)))
    d = space.decode(x0[0])
    assert d["path"] == [[0, 0], [0, 1], [0, 2], [0, 3]] and d["scales"] == [1.0] * 4
    fam = blocks.pool.family
    (_, a), _ = blocks.pool.sources
    got = logits(space.build(x0[0]), x_search)
    want = logits(fam.build(a), x_search)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    np.testing.assert_array_equal(got.argmax(1).numpy(), want.argmax(1).numpy())


def test_dfs_all_off_fails(blocks):
    space = make_space("dfs", blocks)
    g = dfs_genome(())
    with pytest.raises(CandidateError, match="no layer selected"):
        space.build(g)
    assert "error" in space.decode(g)
    json.loads(space.recipe_json(g))


def test_dfs_b_blocks_only(blocks, x_search):
    space = make_space("dfs", blocks)
    (_, a), (_, b) = blocks.pool.sources
    g = dfs_genome(range(4, 8))
    d = space.decode(g)
    assert d["models"] == ["digits-0to4", "digits-5to9"]
    assert d["path"] == [[1, 0], [1, 1], [1, 2], [1, 3]]
    assert d["scales"] == [1.0, 1.0, 1.0, 1.0]  # scale genes 0.5 -> 1.0
    hand = PathMLP((a["stem.weight"], a["stem.bias"]),
                   [(b[f"blocks.{i}.weight"], b[f"blocks.{i}.bias"]) for i in range(4)],
                   [1.0] * 4, (a["head.weight"], a["head.bias"]))
    torch.testing.assert_close(logits(space.build(g), x_search), logits(hand, x_search))
    # and it is not simply model A or model B
    fam = blocks.pool.family
    assert not torch.allclose(logits(space.build(g), x_search), logits(fam.build(a), x_search))
    assert not torch.allclose(logits(space.build(g), x_search), logits(fam.build(b), x_search))


def test_dfs_scales_and_repeats(blocks, x_search):
    space = make_space("dfs", blocks)
    (_, a), (_, b) = blocks.pool.sources
    # slot 0 = A block 0; slot 12 (second repetition) = global block 4 = B block 0; slot 17 = A block 1
    g = dfs_genome([0, 12, 17], {(0, 4): 0.25, (4, 1): 0.9})
    d = space.decode(g)
    assert d["path"] == [[0, 0], [1, 0], [0, 1]]
    assert d["scales"] == pytest.approx([1.0, 0.5, 1.8])
    hand = PathMLP((a["stem.weight"], a["stem.bias"]),
                   [(a["blocks.0.weight"], a["blocks.0.bias"]), (b["blocks.0.weight"], b["blocks.0.bias"]),
                    (a["blocks.1.weight"], a["blocks.1.bias"])],
                   [1.0, 0.5, 1.8], (a["head.weight"], a["head.bias"]))
    torch.testing.assert_close(logits(space.build(g), x_search), logits(hand, x_search))


def test_dfs_needs_block_stack(spec):
    with pytest.raises(SpaceError, match="block"):
        DFSSpace(spec.pool)


def test_dfs_bad_repeats(blocks):
    with pytest.raises(SpaceError, match="repeats"):
        make_space("dfs", blocks, repeats=0)


# --- PSDFSSpace -----------------------------------------------------------------------------------------
# The collection is [A', A, B]: M = 3 models x 4 blocks = 12 global blocks, T = 36 slots.
M3 = 3 * 4
T3 = M3 * R


def psdfs_genome(on_slots=(), scale_genes=None, m=M3) -> np.ndarray:
    t = m * R
    g = np.full(t + m * m, OFF)
    g[t:] = 0.5
    g[list(on_slots)] = ON
    for (i, j), u in (scale_genes or {}).items():
        g[t + i * m + j] = u
    return g


def block(state, i):
    return state[f"blocks.{i}.weight"], state[f"blocks.{i}.bias"]


def test_psdfs_segments_and_initial(blocks):
    space = make_space("ps+dfs", blocks)
    assert isinstance(space, PSDFSSpace) and space.kind == "ps+dfs"
    assert space.dim == 4 + T3 + M3 * M3 == 184  # M = (n_sources + 1) * blocks
    assert space.segments == {"ps": slice(0, 4), "dfs": slice(4, 184)}
    covered = np.zeros(space.dim, dtype=int)
    for s in space.segments.values():
        covered[s] += 1
    assert np.all(covered == 1)
    x0 = space.initial(np.random.default_rng(0))
    assert x0.shape == (1, 184)
    np.testing.assert_array_equal(x0[0, :4], 0.5)
    np.testing.assert_array_equal(x0[0, 4:], psdfs_genome(range(4)))  # A' alone
    d = space.decode(x0[0])["dfs"]
    assert d["models"] == ["ps-merge", "digits-0to4", "digits-5to9"]
    assert d["path"] == [[0, 0], [0, 1], [0, 2], [0, 3]] and d["scales"] == [1.0] * 4


def test_psdfs_initial_builds_the_ps_merge_exactly(blocks, x_search):
    space = make_space("ps+dfs", blocks, seed=3)
    ps = make_space("ps", blocks, seed=3)
    x0 = space.initial(np.random.default_rng(0))[0]
    merged = ps.merged_state(x0[:4])
    built, want = space.build(x0), ps.build(x0[:4])
    assert built.stem[0] is not blocks.pool.sources[0][1]["stem.weight"]
    for i, (w, b) in enumerate(built.blocks):
        assert torch.equal(w, merged[f"blocks.{i}.weight"]) and torch.equal(b, merged[f"blocks.{i}.bias"])
    assert torch.equal(built.stem[0], merged["stem.weight"]) and torch.equal(built.head[0], merged["head.weight"])
    torch.testing.assert_close(logits(built, x_search), logits(want, x_search), rtol=0, atol=0)


def test_psdfs_path_through_a_own_blocks(blocks, x_search):
    space = make_space("ps+dfs", blocks, seed=1)
    ps = make_space("ps", blocks, seed=1)
    (_, a), _ = blocks.pool.sources
    x_ps = np.array([0.8, 0.3, 0.6, 0.9])
    g = np.concatenate([x_ps, psdfs_genome(range(4, 8))])  # global blocks 4..7 = A's own blocks
    assert space.decode(g)["dfs"]["path"] == [[1, 0], [1, 1], [1, 2], [1, 3]]
    merged = ps.merged_state(x_ps)
    hand = PathMLP((merged["stem.weight"], merged["stem.bias"]), [block(a, i) for i in range(4)],
                   [1.0] * 4, (merged["head.weight"], merged["head.bias"]))
    built = space.build(g)
    for (w, b), (wa, ba) in zip(built.blocks, [block(a, i) for i in range(4)], strict=True):
        assert torch.equal(w, wa) and torch.equal(b, ba)
    torch.testing.assert_close(logits(built, x_search), logits(hand, x_search), rtol=0, atol=0)


def test_psdfs_build_routes_through_merged_model_a_and_b(blocks, x_search):
    space = make_space("ps+dfs", blocks, seed=1)
    ps = make_space("ps", blocks, seed=1)
    fam = blocks.pool.family
    (_, a), (_, b) = blocks.pool.sources
    x_ps = np.array([0.8, 0.3, 0.6, 0.9])
    # slot 0 = A' block 0, slot 5 = A block 1, slot 8 = B block 0, slot 21 (2nd repetition) holds
    # global block 21 mod 12 = 9 = B block 1; W[8, 9] gene 0.25 -> scale 0.5
    g = np.concatenate([x_ps, psdfs_genome([0, 5, 8, 21], {(8, 9): 0.25})])
    d = space.decode(g)
    assert d["dfs"]["models"] == ["ps-merge", "digits-0to4", "digits-5to9"]
    assert d["dfs"]["path"] == [[0, 0], [1, 1], [2, 0], [2, 1]]
    assert d["dfs"]["scales"] == pytest.approx([1.0, 1.0, 1.0, 0.5])
    assert d["ps"] == ps.decode(x_ps)
    merged = ps.merged_state(x_ps)
    hand = PathMLP((merged["stem.weight"], merged["stem.bias"]),
                   [block(merged, 0), block(a, 1), block(b, 0), block(b, 1)], [1.0, 1.0, 1.0, 0.5],
                   (merged["head.weight"], merged["head.bias"]))
    torch.testing.assert_close(logits(space.build(g), x_search), logits(hand, x_search), rtol=0, atol=0)
    with_a = fam.build_path([a, a, b], [(0, 0), (1, 1), (2, 0), (2, 1)], [1.0, 1.0, 1.0, 0.5])
    assert not torch.allclose(logits(space.build(g), x_search), logits(with_a, x_search))


def test_psdfs_without_sources_kept_replaces_a(blocks, x_search):
    space = make_space("ps+dfs", blocks, seed=1, keep_sources=False)
    assert space.dim == 4 + 88
    ps = make_space("ps", blocks, seed=1)
    (_, _), (_, b) = blocks.pool.sources
    x_ps = np.array([0.8, 0.3, 0.6, 0.9])
    g = np.concatenate([x_ps, psdfs_genome([0, 1, 4, 5], m=8)])
    d = space.decode(g)["dfs"]
    assert d["models"] == ["ps-merge", "digits-5to9"] and d["path"] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    merged = ps.merged_state(x_ps)
    hand = PathMLP((merged["stem.weight"], merged["stem.bias"]),
                   [block(merged, 0), block(merged, 1), block(b, 0), block(b, 1)], [1.0] * 4,
                   (merged["head.weight"], merged["head.bias"]))
    torch.testing.assert_close(logits(space.build(g), x_search), logits(hand, x_search), rtol=0, atol=0)


def test_psdfs_all_off_fails(blocks):
    space = make_space("ps+dfs", blocks)
    with pytest.raises(CandidateError, match="no layer selected"):
        space.build(np.concatenate([np.full(4, 0.5), psdfs_genome(())]))


# --- make_space -----------------------------------------------------------------------------------------

def test_make_space_unknown_kind(spec):
    with pytest.raises(SpaceError, match="'layers'") as ei:
        make_space("layers", spec)
    assert "params" in str(ei.value)


@pytest.mark.parametrize("kind, problem", [("dfs", "spec"), ("ps+dfs", "spec"), ("ps", "scratch"),
                                           ("dfs", "scratch")])
def test_make_space_kind_not_offered(kind, problem, request):
    prob = request.getfixturevalue(problem)
    with pytest.raises(SpaceError) as ei:
        make_space(kind, prob)
    msg = str(ei.value)
    assert repr(kind) in msg and repr(prob.name) in msg


def test_make_space_kinds_match_problem(blocks):
    for kind in blocks.space_kinds():
        assert make_space(kind, blocks).kind == kind


def test_make_space_unknown_option_is_a_space_error(spec):
    with pytest.raises(SpaceError, match="granularty"):
        make_space("ps", spec, granularty="tensor")
