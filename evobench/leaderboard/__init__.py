"""The leaderboard: submissions re-run under a fixed protocol, ranked on a static site.

``submission`` (the YAML schema, code found without importing it), ``protocol`` (tracks, budgets,
seeds, limits), ``worker``/``remote``/``sandbox``/``wire`` (the method in its own confined process),
``submit`` (runs and result files), ``results`` (the result format and its hashes), ``site`` (the
static site), ``verify`` (re-running a seed).
"""
