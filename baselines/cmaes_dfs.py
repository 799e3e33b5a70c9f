"""CMA-ES over the data-flow space (DFS): layer-slot indicators and the scaling matrix.

Paper: Akiba et al., "Evolutionary Optimization of Model Merging Recipes" (2024), DFS merging —
T = M·r layer slots, slot t included when its indicator gene > 0.5 (in [0,1] genomes), and a
scaling matrix W (M×M) scaling the input passed from layer i to layer j; optimised with CMA-ES,
population 128, 100 generations. The space decodes the genome; this module only searches it.

Hyper-parameters (same fields as ``cmaes-ps``, see :mod:`evobench.baselines.cmaes_ps`):
    popsize (128): the paper's population.
    sigma0 (None = 1/6): initial step size in the unit box.
    diagonal ("auto"): separable CMA-ES above 1000 dimensions (a DFS genome over two 32-layer
        models with r = 3 has 192 + 64² = 4,288 genes).

x0 is the space's first starting genome (``initial(rng)[0]``: a path that reproduces model A with
unit scales), as handed to ``seed`` by the runner. The CMA-ES driving code is shared with
``cmaes-ps`` (``CMAESBase`` / ``CMADriver``).
"""

from __future__ import annotations

from pydantic import Field

from .cmaes_ps import CMAConfig, CMAESBase


class CMAESDFSConfig(CMAConfig):
    popsize: int | None = Field(128, ge=4)


class CMAESDFS(CMAESBase):
    """CMA-ES over a DFS genome, population 128 by default."""

    name = "cmaes-dfs"
    spaces = ("dfs",)
    paper = "Akiba et al. 2024, Evolutionary Optimization of Model Merging Recipes (DFS)"
    Config = CMAESDFSConfig
