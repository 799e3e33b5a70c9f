"""The leaderboard's static site: ranking, ties, unranked results, escaping, determinism, README update.

Result files are made here in code (:func:`make_result` seals a valid result dict, :func:`write_result`
puts it at ``<root>/results/<method>/<track>.json``) against the tiny protocol :data:`PROTOCOL`;
expected means, intervals and test decisions are recomputed independently with numpy/scipy.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from evobench.jsonio import write_json
from evobench.leaderboard.protocol import Protocol, track_hash
from evobench.leaderboard.results import FORMAT, ResultError, content_hash, load_results, seal
from evobench.leaderboard.site import (
    NO_SCORE,
    TAMPERED,
    build_site,
    rank_tracks,
    summary_markdown,
    update_readme,
)
from evobench.stats import paired_test

PROTOCOL = Protocol.model_validate({
    "version": 2, "alpha": 0.05,
    "tracks": {
        "digits": {"description": "Merge digit specialists.", "task": {"name": "digits-specialists"},
                   "budget": 20, "seeds": [0, 1, 2, 3, 4]},
        "wine": {"description": "Wine classifiers.", "task": {"name": "wine"}, "budget": 20,
                 "seeds": [0, 1, 2, 3, 4]},
    },
})
# digits: a consistent gap between every pair (ranks 1, 2, 3); wine: equal-ish means, noisy (shared rank 1)
DIGITS = {"steady": [0.90, 0.91, 0.92, 0.93, 0.94], "shifted": [0.85, 0.865, 0.87, 0.88, 0.89],
          "weak": [0.50, 0.52, 0.49, 0.51, 0.50]}
WINE = {"noisy-a": [0.5, 0.9, 0.4, 0.8, 0.6], "noisy-b": [0.8, 0.5, 0.7, 0.45, 0.8]}


def make_result(method: str, track: str, scores: list[float | None], *, protocol: Protocol = PROTOCOL,
                **method_fields: Any) -> dict[str, Any]:
    """A sealed, schema-valid result of ``method`` on ``track`` with one run per score (seeds 0, 1, ...)."""
    runs = []
    for seed, score in enumerate(scores):
        best = None if score is None else score + 0.02
        top = 0.6 if best is None else best
        curve = [0.2 + 0.02 * seed, 0.45 + 0.01 * seed, top - 0.12, top - 0.05 + 0.01 * (seed % 2), top]
        runs.append({"seed": seed, "test_score": score,
                     "test_metrics": {"accuracy": score, "error": None if score is None else 1 - score},
                     "test_scores": [], "example_ids": None, "best_search": best,
                     "curve": {"evaluations": [1, 3 + seed, 8, 13, 20], "best_so_far": curve},
                     "evaluations": 20, "failed": seed % 2, "forward_examples": 100,
                     "wall_time_s": 2.0 + seed, "method_time_s": 1.0 + 0.5 * seed, "recipe": {},
                     "errors": []})
    method_info = {"name": method, "version": "1.0", "authors": ["Ada Lovelace"], "license": "MIT",
                   "code": {"package": f"{method}-pkg", "version": "0.3.1"}, "entry_point": method,
                   "url": None, "hyperparameters": {"popsize": 8}, **method_fields}
    return seal({"format": FORMAT, "method": method_info, "track": track, "task": "t", "space": "ps",
                 "budget": 20, "seeds": list(range(len(scores))),
                 "protocol": {"version": protocol.version, "alpha": protocol.alpha}, "runs": runs,
                 "environment": {"python": "3.12"}, "created": "2026-12-02T10:00:00Z",
                 "hashes": {"protocol": track_hash(protocol, track) if track in protocol.tracks else "0" * 64, "models": "m" * 64,
                            "data": "d" * 64, "code": "c" * 64, "results": ""}})


def write_result(root: Path, data: dict[str, Any]) -> Path:
    path = root / "results" / data["method"]["name"] / f"{data['track']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    return path


def write_standard(root: Path) -> Path:
    """The DIGITS and WINE methods as result files under ``root/results``; returns that folder."""
    for track, methods in (("digits", DIGITS), ("wine", WINE)):
        for name, scores in methods.items():
            url = "https://example.org/m" if name == "steady" else None
            write_result(root, make_result(name, track, scores, url=url))
    return root / "results"


class _Tables(HTMLParser):
    """Cells of every table with an id: {id: [[(data-sort or None, text), ...] per body row]}."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str | None, str]]]] = {}
        self._table: str | None = None
        self._cell: list[Any] | None = None
        self._in_body = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._table and self._in_body:
            self._cell = [a.get("data-sort"), ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table:
            self.tables[self._table][-1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1] += data


def _hand(scores: list[float]) -> tuple[float, float]:
    a = np.asarray(scores)
    return float(a.mean()), float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))


def test_ranking_means_cis_and_ranks_match_hand_computation(tmp_path):
    summary = build_site(load_results(write_standard(tmp_path)), PROTOCOL, tmp_path / "site")
    assert summary["tracks"] == {"digits": ["steady", "shifted", "weak"], "wine": ["noisy-b", "noisy-a"]}
    assert summary["not_ranked"] == []
    assert summary["files"] == ["index.html", *(f"methods/{n}.html" for n in sorted({*DIGITS, *WINE})),
                                "summary.md"]
    # the consistent gaps are significant, the wine pair is not (checked with scipy, independently)
    assert stats.ttest_rel(DIGITS["steady"], DIGITS["shifted"]).pvalue < 0.05
    assert stats.ttest_rel(DIGITS["shifted"], DIGITS["weak"]).pvalue < 0.05
    assert stats.ttest_rel(WINE["noisy-b"], WINE["noisy-a"]).pvalue > 0.5
    tables = _Tables((tmp_path / "site" / "index.html").read_text()).tables
    for track, methods, ranks in (("digits", DIGITS, [1, 2, 3]), ("wine", WINE, [1, 1])):
        rows = tables[f"board-{track}"]
        assert [r[1][1] for r in rows] == summary["tracks"][track]
        assert [int(r[0][1]) for r in rows] == ranks
        for row in rows:
            mean, half = _hand(methods[row[1][1]])
            assert float(row[3][0]) == pytest.approx(mean, abs=1e-12)
            assert row[3][1] == f"{mean:.4f} ± {half:.4f}"
            assert row[4][1] == "5" and row[5][1] == "20"
            assert float(row[6][0]) == pytest.approx(4.0) and float(row[7][0]) == pytest.approx(2.0)
    entries = rank_tracks(load_results(tmp_path / "results"), PROTOCOL)[0]["digits"]
    for e in entries:
        assert (e.mean, e.ci) == pytest.approx(_hand(DIGITS[e.loaded.result.method.name]), abs=1e-12)
    assert tables["board-digits"][0][8][1] == "https://example.org/m"  # url given: a link
    assert tables["board-digits"][1][8][1] == "shifted-pkg==0.3.1"  # else package==version


def test_undefined_or_missing_test_does_not_separate(tmp_path):
    # identical non-zero differences give p NaN: a consistent 0.1 gap does not separate; nor does one seed
    write_result(tmp_path, make_result("const-a", "digits", [0.8, 0.7, 0.6]))
    write_result(tmp_path, make_result("const-b", "digits", [0.7, 0.6, 0.5]))
    write_result(tmp_path, make_result("lone", "digits", [0.1]))
    entries = rank_tracks(load_results(tmp_path / "results"), PROTOCOL)[0]["digits"]
    assert [(e.name, e.rank) for e in entries] == [("const-a", 1), ("const-b", 1), ("lone", 1)]
    assert np.isnan(paired_test(entries[0].loaded.scores(), entries[1].loaded.scores()).p_value)
    assert entries[2].ci == 0.0  # one seed: no interval


def _unranked(tmp_path: Path, mutate) -> tuple[dict, dict, str, str]:
    write_standard(tmp_path)
    path = mutate(tmp_path)
    summary = build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    return summary, _Tables(index).tables, str(path), (tmp_path / "site" / "summary.md").read_text()


def _tamper(root: Path) -> Path:
    path = write_result(root, make_result("cheater", "digits", [0.5, 0.5, 0.5, 0.5, 0.5]))
    data = json.loads(path.read_text())
    data["runs"][0]["test_score"] = 0.99  # edited after sealing
    write_json(path, data)
    return path


def _stale_version(root: Path) -> Path:
    old = Protocol.model_validate({**PROTOCOL.model_dump(), "version": 1})
    return write_result(root, make_result("oldie", "digits", [0.99] * 5, protocol=old))


def _stale_definition(root: Path) -> Path:
    tracks = PROTOCOL.model_dump()["tracks"]
    tracks["digits"]["budget"] = 10
    other = Protocol.model_validate({**PROTOCOL.model_dump(), "tracks": tracks})
    return write_result(root, make_result("oldie", "digits", [0.99] * 5, protocol=other))


@pytest.mark.parametrize("mutate, method, reason", [
    (_tamper, "cheater", TAMPERED),
    (_stale_version, "oldie", "produced under protocol version 1 (current: 2)"),
    (_stale_definition, "oldie",
     "produced under another definition of this track (its protocol hash differs)"),
    (lambda root: write_result(root, make_result("broken", "digits", [None, None])), "broken", NO_SCORE),
])
def test_ineligible_results_are_listed_with_reason_never_ranked(tmp_path, mutate, method, reason):
    summary, tables, path, md = _unranked(tmp_path, mutate)
    assert summary["tracks"]["digits"] == ["steady", "shifted", "weak"]
    assert summary["not_ranked"] == [(path, reason)]
    assert method not in [r[1][1] for r in tables["board-digits"]]
    rows = [[c[1] for c in r] for r in tables["not-ranked-digits"]]
    assert rows == [[method, f"{method}/digits.json", reason]]
    assert "not-ranked-wine" not in tables
    assert f"- Not ranked: {method} ({method}/digits.json): {reason}" in md
    assert f"| {method} |" not in md


def test_result_for_unknown_track_is_not_ranked(tmp_path):
    write_standard(tmp_path)
    path = write_result(tmp_path, make_result("steady", "retired", [0.9, 0.9]))
    summary = build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    assert summary["not_ranked"] == [(str(path), "track 'retired' is not in protocol version 2")]
    rows = _Tables((tmp_path / "site" / "index.html").read_text()).tables["not-ranked"]
    assert [c[1] for c in rows[0]] == ["steady", "steady/retired.json",
                                       "track 'retired' is not in protocol version 2"]


HOSTILE = "<script>alert(1)</script>"


def test_untrusted_strings_are_escaped_and_only_https_links_emitted(tmp_path):
    data = make_result("evil", "digits", [0.1, 0.2], authors=[HOSTILE], url="https://example.org/a?b=1&c=2",
                       license='"><img src=x onerror=alert(2)>', hyperparameters={"</pre><b>": HOSTILE},
                       code={"file": "<i>m.py</i>", "sha256": "ab" * 32})
    data["runs"][0]["errors"] = [HOSTILE]
    write_result(tmp_path, seal(data))
    build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    texts = {p.name: p.read_text() for p in (tmp_path / "site").rglob("*.*")}
    assert set(texts) == {"index.html", "summary.md", "evil.html"}
    for text in texts.values():
        for raw in (HOSTILE, "<img", "<i>", "</pre><b>", "javascript:alert(3)\""):
            assert raw not in text
        assert 'href="javascript' not in text
    page = texts["evil.html"]
    assert "<dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>" in page  # authors
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page  # license
    assert "&lt;i&gt;m.py&lt;/i&gt; (sha256 abababababab)" in page  # code reference
    assert "<li>seed 0: &lt;script&gt;alert(1)&lt;/script&gt;</li>" in page  # run errors
    assert page.count("<script>") == 1  # only the page's own sorting script
    assert 'href="https://example.org/a?b=1&amp;c=2"' in texts["index.html"]


@pytest.mark.parametrize("field, value", [("url", "javascript:alert(3)"), ("url", 'https://x.org/"><b>'),
                                          ("name", "../../evil"), ("name", "Evil")])
def test_a_result_with_an_unsafe_name_or_url_is_refused_when_loaded(tmp_path, field, value):
    data = make_result("ok", "digits", [0.5, 0.6])
    data["method"][field] = value
    data["hashes"]["results"] = content_hash(data)
    path = tmp_path / "results" / "ok" / "digits.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match=rf"digits.json: method.{field}: String should match pattern"):
        load_results(tmp_path / "results")


def test_build_is_deterministic_and_removes_stale_pages(tmp_path):
    results = load_results(write_standard(tmp_path / "a"))
    build_site(results, PROTOCOL, tmp_path / "one")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # same files elsewhere, loaded in another order
    (tmp_path / "two" / "methods").mkdir(parents=True)
    (tmp_path / "two" / "methods" / "gone.html").write_text("old page")
    (tmp_path / "two" / "methods" / "notes.txt").write_text("keep")
    build_site(list(reversed(load_results(tmp_path / "b" / "results"))), PROTOCOL, tmp_path / "two")
    build_site(results, PROTOCOL, tmp_path / "one")  # rebuilding in place changes nothing
    one, two = ({p.relative_to(d): p.read_bytes() for p in d.rglob("*") if p.is_file()}
                for d in (tmp_path / "one", tmp_path / "two"))
    assert two.pop(Path("methods/notes.txt")) == b"keep"
    assert len(one) == 7 and one == two
    assert str(tmp_path).encode() not in b"".join(one.values())


def test_summary_markdown(tmp_path):
    write_standard(tmp_path)
    _tamper(tmp_path)
    md = summary_markdown(load_results(tmp_path / "results"), PROTOCOL)
    build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    assert (tmp_path / "site" / "summary.md").read_text() == md
    lines = md.splitlines()
    assert lines[0].startswith("Protocol version 2. Rank = 1 + the number of methods significantly better")
    assert "p < 0.05" in lines[0] and "share a rank" in lines[0]
    i = lines.index("### digits")
    rows = [f"| {r} | {n} | {_hand(DIGITS[n])[0]:.4f} ± {_hand(DIGITS[n])[1]:.4f} | 5 | 20 |"
            for r, n in ((1, "steady"), (2, "shifted"), (3, "weak"))]
    assert lines[i + 2: i + 7] == ["| Rank | Method | Mean test score ± 95 % CI | Seeds | Evaluations |",
                                   "|---:|---|---:|---:|---:|", *rows]
    assert lines[i + 8] == f"- Not ranked: cheater (cheater/digits.json): {TAMPERED}"
    j = lines.index("### wine")
    assert [ln.split(" | ")[:2] for ln in lines[j + 4: j + 6]] == [["| 1", "noisy-b"], ["| 1", "noisy-a"]]


def test_update_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nintro\n<!-- leaderboard:start -->\nold table\n"
                      "<!-- leaderboard:end -->\nafter\n")
    assert update_readme(readme, "| new |\n|---|\n") is True
    assert readme.read_text() == ("# Title\n\nintro\n<!-- leaderboard:start -->\n| new |\n|---|\n"
                                  "<!-- leaderboard:end -->\nafter\n")
    assert update_readme(readme, "| new |\n|---|") is False
    readme.write_text("# Title\nno markers\n")
    with pytest.raises(ValueError, match="leaderboard:start") as err:
        update_readme(readme, "x")
    assert "\n" not in str(err.value)
    assert readme.read_text() == "# Title\nno markers\n"
    readme.write_text("<!-- leaderboard:end -->\n<!-- leaderboard:start -->\n")
    with pytest.raises(ValueError):
        update_readme(readme, "x")


def test_method_page_tables_curve_and_metrics(tmp_path):
    write_standard(tmp_path)
    _tamper(tmp_path)
    build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    page = (tmp_path / "site" / "methods" / "shifted.html").read_text()
    tables = _Tables(page).tables
    assert [[c[1] for c in r] for r in tables["seeds-digits"]] == [
        [str(s), f"{v:.4f}", "20", str(s % 2), f"{2.0 + s:.1f}", f"{1.0 + 0.5 * s:.1f}"]
        for s, v in enumerate(DIGITS["shifted"])]
    mean = float(np.mean(DIGITS["shifted"]))
    assert [[c[1] for c in r] for r in tables["metrics-digits"]] == [["accuracy", f"{mean:.4f}"],
                                                                      ["error", f"{1 - mean:.4f}"]]
    assert "<h1>shifted</h1>" in page and f"rank 2, mean {_hand(DIGITS['shifted'])[0]:.4f}" in page
    svg = page[page.index("<svg"): page.index("</svg>")]
    assert svg.count('<polyline fill="none" class="seed"') == 5 and svg.count('class="mean"') == 1
    x_ticks = [t.split(">")[-1] for t in svg.split("</text>") if 'text-anchor="middle">' in t][:5]
    assert x_ticks == ["0", "5", "10", "15", "20"]
    # read values back through the y axis: tick labels sit 4 px below their grid line
    found = re.findall(r'<text x="\d+" y="([\d.]+)" text-anchor="end">([-\d.]+)</text>', svg)
    ticks = [(float(y) - 4, float(v)) for y, v in found]
    (p0, v0), (p1, v1) = ticks[0], ticks[-1]
    mean_pts = re.search(r'class="mean"[^>]*points="([^"]+)"', svg)[1].split()
    values = [v0 + (float(pt.split(",")[1]) - p0) * (v1 - v0) / (p1 - p0) for pt in mean_pts]
    assert values[-1] == pytest.approx(np.mean(DIGITS["shifted"]) + 0.02, abs=2e-3)  # mean best at the end
    assert values[0] == pytest.approx(0.24, abs=2e-3)  # mean of the first values 0.20 ... 0.28
    cheater = (tmp_path / "site" / "methods" / "cheater.html").read_text()
    assert f"not ranked: {TAMPERED}" in cheater


def test_duplicate_result_for_a_method_is_not_ranked_twice(tmp_path):
    write_standard(tmp_path)
    path = tmp_path / "results" / "zz-copy" / "digits.json"
    path.parent.mkdir(parents=True)
    write_json(path, make_result("steady", "digits", [0.1] * 5))
    summary = build_site(load_results(tmp_path / "results"), PROTOCOL, tmp_path / "site")
    assert summary["tracks"]["digits"] == ["steady", "shifted", "weak"]
    assert summary["not_ranked"] == [
        (str(path), "another result file for this method on this track comes first (by path)")]
