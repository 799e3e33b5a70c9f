"""The leaderboard end to end: a third-party method goes from YAML to a ranked row on the digits and
ja-math-mini tracks through the CLI; the committed results, site and README block are what the
commands produce from the committed files, and a committed seed reproduces bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evobench.cli import main
from evobench.leaderboard.protocol import load_protocol, track_hash
from evobench.leaderboard.results import load_results
from evobench.leaderboard.sandbox import landlock_abi
from evobench.leaderboard.site import END, START, build_site, summary_markdown

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "leaderboard"
PLUGINS = Path(__file__).parent / "plugins" / "lbpkg"

needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="needs Linux Landlock to confine submitted methods")

TINY = """\
version: 1
tracks:
  digits:
    task: {name: digits-specialists}
    budget: 12
    seeds: [0, 1, 2]
  ja-math-mini:
    task: {name: ja-math-mini}
    budget: 6
    seeds: [0, 1]
"""


@needs_landlock
@pytest.mark.slow
def test_a_third_party_method_goes_from_yaml_to_ranked_rows_on_both_tracks(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(PLUGINS))
    proto = tmp_path / "protocol.yaml"
    proto.write_text(TINY)
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "hillclimb.yaml").write_text(
        "name: hillclimb\nversion: '0.2.0'\nauthors: [Third Party]\nlicense: BSD-3-Clause\n"
        "code: {package: hillclimb-method, version: 0.2.0}\nentry_point: hillclimb\n"
        "hyperparameters: {batch: 3}\ntracks: [digits, ja-math-mini]\n")
    shutil.copy(BOARD / "submissions" / "random-search.yaml", subs / "random-search.yaml")
    results, site = tmp_path / "results", tmp_path / "site"
    for name in ("hillclimb", "random-search"):
        assert main(["submit", str(subs / f"{name}.yaml"), "--protocol", str(proto), "--results", str(results)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\n{END}\n")
    assert main(["leaderboard", "build", "--results", str(results), "--protocol", str(proto), "--out", str(site),
                 "--readme", str(readme)]) == 0
    out = capsys.readouterr().out
    assert "digits: 2 ranked" in out and "ja-math-mini: 2 ranked" in out
    index = (site / "index.html").read_text()
    for track in ("digits", "ja-math-mini"):
        table = index[index.index(f'<table id="board-{track}"'):]
        table = table[:table.index("</table>")]
        assert 'href="methods/hillclimb.html"' in table and 'href="methods/random-search.html"' in table
        assert f"### {track}" in readme.read_text()
    loaded = {(r.result.method.name, r.result.track): r for r in load_results(results)}
    assert set(loaded) == {(m, t) for m in ("hillclimb", "random-search") for t in ("digits", "ja-math-mini")}
    hc = loaded["hillclimb", "ja-math-mini"].result
    assert hc.budget == 6 and [r.evaluations for r in hc.runs] == [6, 6] and hc.space == "ps"
    assert "hillclimb" in (site / "methods" / "hillclimb.html").read_text()
    assert main(["leaderboard", "verify", str(results / "hillclimb" / "ja-math-mini.json"), "--seed", "1",
                 "--submissions", str(subs), "--protocol", str(proto)]) == 0


def test_the_committed_results_are_sealed_current_and_complete():
    protocol = load_protocol(BOARD / "protocol.yaml")
    results = load_results(BOARD / "results")
    submissions = sorted(p.stem for p in (BOARD / "submissions").glob("*.yaml"))
    assert sorted({r.result.method.name for r in results}) == submissions
    for r in results:
        assert not r.tampered, r.path
        assert not r.stale(track_hash(protocol, r.result.track), protocol.version), r.path
        track = protocol.track(r.result.track)
        assert [run.seed for run in r.result.runs] == track.seeds
        assert all(run.evaluations == track.budget for run in r.result.runs)


def test_the_committed_site_and_readme_block_are_built_from_the_committed_results(tmp_path):
    """CI rebuilds the site: a result added or changed without `evobench leaderboard build` fails here."""
    protocol = load_protocol(BOARD / "protocol.yaml")
    results = load_results(BOARD / "results")
    build_site(results, protocol, tmp_path / "site")
    fresh = {p.relative_to(tmp_path / "site"): p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()}
    committed = {p.relative_to(BOARD / "site"): p.read_bytes() for p in (BOARD / "site").rglob("*") if p.is_file()}
    assert sorted(fresh) == sorted(committed)
    stale = [str(p) for p in fresh if fresh[p] != committed[p]]
    assert not stale, f"rebuild the site with `evobench leaderboard build --readme README.md`: {stale}"
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(START) + len(START):readme.index(END)].strip()
    assert block == summary_markdown(results, protocol).strip()


@needs_landlock
def test_a_committed_digits_seed_reproduces_bit_for_bit(capsys):
    from evobench.leaderboard.results import load_result
    from evobench.leaderboard.submit import build_problem, models_hash

    path = BOARD / "results" / "m2n2" / "digits.json"
    protocol = load_protocol(BOARD / "protocol.yaml")
    if models_hash(build_problem(protocol.track("digits"))) != load_result(path).result.hashes.models:
        pytest.skip("this machine trains the digits specialists to other weights than the committed results'")
    assert main(["leaderboard", "verify", str(path), "--seed", "2", "--submissions", str(BOARD / "submissions"),
                 "--protocol", str(BOARD / "protocol.yaml")]) == 0
    assert "seed 2 reproduces bit for bit" in capsys.readouterr().out
