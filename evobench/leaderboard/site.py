"""The leaderboard's static site: ``index.html``, one page per method, and ``summary.md``.

:func:`build_site` turns loaded result files (:mod:`.results`) and the protocol (:mod:`.protocol`)
into plain HTML that works offline from ``file://``: no external scripts, styles or fonts; tables
sort with a few lines of inline JavaScript (every sortable cell carries its value in ``data-sort``),
curves are inline SVG, and a Content Security Policy admits only that one script and style (by
hash). :func:`summary_markdown` gives the tables as Markdown; :func:`update_readme` puts them between
the README's ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->`` lines.

Ranking (:func:`rank_tracks`). On a track a result is *eligible* when its content gives its own
results hash (not tampered), it was produced under the current definition of the track (not stale)
and at least one seed has a finite test score; any other result is listed under "Not ranked" with
the reason and never ranked. Eligible methods are ordered by mean test score over seeds (ties by
name). A method's rank is 1 + the number of methods *significantly better* than it: the paired
two-sided t-test over the seeds both ran (:func:`evobench.stats.paired_test`) gives p <
``protocol.alpha`` and a positive mean difference for the other method; an undefined p (NaN: fewer
than two common seeds, identical differences) separates nothing. Methods the test cannot separate
thus share a rank (the LMSYS Chatbot Arena convention), and ranks may skip numbers.

Safety and reproducibility. Every string from a result file is untrusted: it is HTML-escaped,
``href`` is written only for ``https://`` URLs, and a page's file name is a method name that must
match ``[a-z0-9][a-z0-9-]*`` (anything else raises before a file is written). The output is a
function of the inputs only (results sorted by path, fixed float formats, paths shown relative, no
clock), so CI can rebuild the site and compare it byte for byte with the committed one. Files are
written atomically; pages of methods no longer present are removed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evobench.jsonio import dumps, write_text
from evobench.leaderboard.protocol import Protocol, track_hash
from evobench.leaderboard.results import LoadedResult
from evobench.leaderboard.svg import curve_svg
from evobench.stats import mean_ci, paired_test

START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"
TAMPERED = "content does not match its results hash (edited after evobench wrote it)"
NO_SCORE = "no seed produced a test score"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_HTTPS = re.compile(r"https://[^\s\"'<>\\`]+")
_RULE = ("Rank = 1 + the number of methods significantly better (paired two-sided t-test over the seeds both "
         "ran, p < {alpha:g}, positive mean difference); methods the test cannot separate share a rank (the "
         "LMSYS convention), so ranks may skip numbers. Mean ± half-width of the 95 % t-interval over seeds.")
_CSS = """body{font:15px/1.5 system-ui,sans-serif;color:#1f2328;max-width:1180px;margin:2rem auto;
padding:0 1.5rem}h1{margin:0 0 .25rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;
padding-bottom:.3rem}a{color:#0969da}h2 a{color:inherit;text-decoration:none}.muted,.note{color:#59636e}
.note{font-size:13px;max-width:70rem}.reason{color:#9a3412}
table{border-collapse:collapse;margin:.6rem 0 .4rem;font-variant-numeric:tabular-nums}
th,td{padding:.35rem .75rem;border-bottom:1px solid #d0d7de;text-align:left;white-space:nowrap}
th{background:#f6f8fa;font-weight:600}th[data-type]{cursor:pointer;user-select:none}
th[data-type]:hover{background:#eaeef2}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}td.num{text-align:right}td.reason{white-space:normal}
tbody tr:nth-child(even){background:#fafbfc}dl.facts{display:grid;grid-template-columns:max-content auto;
gap:.15rem 1rem}dl.facts dt{color:#59636e}dl.facts dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;padding:.6rem;border-radius:6px;overflow:auto}svg text{font-size:11px;fill:#59636e}"""
_JS = """function key(c,num){var v=c.dataset.sort;if(!num)return v;v=parseFloat(v);
return isNaN(v)?-Infinity:v}
document.querySelectorAll("table.sortable").forEach(function(t){
t.querySelectorAll("th[data-type]").forEach(function(th){th.addEventListener("click",function(){
var asc=th.getAttribute("aria-sort")!=="ascending",i=th.cellIndex,num=th.dataset.type==="number";
var b=t.tBodies[0];t.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort")});
th.setAttribute("aria-sort",asc?"ascending":"descending");
Array.from(b.rows).sort(function(r,s){var x=key(r.cells[i],num),y=key(s.cells[i],num);
var c=num?(x<y?-1:x>y?1:0):x.localeCompare(y);return asc?c:-c}).forEach(function(r){b.appendChild(r)})
})})});"""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


_CSP = f"default-src 'none'; style-src {_sha(_CSS)}; script-src {_sha(_JS)}"


@dataclass(frozen=True)
class Entry:
    """A result on its track: rank, mean and CI half-width when ranked; else ``reason`` says why not."""

    loaded: LoadedResult
    rank: int = 0
    mean: float = math.nan
    ci: float = math.nan
    reason: str = ""

    @property
    def name(self) -> str:
        return self.loaded.result.method.name


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _check_name(loaded: LoadedResult) -> None:
    if not _NAME.fullmatch(name := loaded.result.method.name):
        raise ValueError(f"{loaded.path}: method name {name!r} is not a leaderboard name "
                         "([a-z0-9][a-z0-9-]*)")


def _shown(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"  # never absolute: the site must not depend on the machine


def _reason(loaded: LoadedResult, protocol: Protocol) -> str:
    r = loaded.result
    if r.track not in protocol.tracks:
        return f"track {r.track!r} is not in protocol version {protocol.version}"
    if loaded.tampered:
        return TAMPERED
    if loaded.stale(track_hash(protocol, r.track), protocol.version):
        if r.protocol.version != protocol.version:
            return f"produced under protocol version {r.protocol.version} (current: {protocol.version})"
        return "produced under another definition of this track (its protocol hash differs)"
    return "" if loaded.scores() else NO_SCORE


def _beats(a: dict[int, float], b: dict[int, float], alpha: float) -> bool:
    test = paired_test(a, b)
    return bool(math.isfinite(test.p_value) and test.p_value < alpha and test.mean_diff > 0)


def rank_tracks(results: list[LoadedResult],
                protocol: Protocol) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """Per protocol track its entries (ranked ones by mean, then the not ranked ones by path), and the
    results whose track is not in the protocol. Rules: the module docstring."""
    boards: dict[str, list[Entry]] = {t: [] for t in protocol.tracks}
    orphans: list[Entry] = []
    for loaded in sorted(results, key=lambda x: str(x.path)):
        _check_name(loaded)
        why, track = _reason(loaded, protocol), loaded.result.track
        if track not in boards:
            orphans.append(Entry(loaded, reason=why))
            continue
        if not why and any(e.name == loaded.result.method.name and not e.reason for e in boards[track]):
            why = "another result file for this method on this track comes first (by path)"
        boards[track].append(Entry(loaded, reason=why))
    for track, entries in boards.items():
        ok = {e.name: (e, e.loaded.scores()) for e in entries if not e.reason}
        stats = {n: mean_ci(list(s.values())) for n, (_, s) in ok.items()}
        order = sorted(ok, key=lambda n: (-stats[n][0], n))
        better = {n: sum(_beats(ok[o][1], ok[n][1], protocol.alpha) for o in order if o != n) for n in order}
        boards[track] = ([Entry(ok[n][0].loaded, 1 + better[n], *stats[n]) for n in order]
                         + [e for e in entries if e.reason])
    return boards, orphans


def _mean(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _f(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "–"


def _code(loaded: LoadedResult, link: bool = True) -> str:
    m, c = loaded.result.method, loaded.result.method.code
    if m.url and link and _HTTPS.fullmatch(m.url):
        return f'<a href="{_e(m.url)}" rel="nofollow noopener">{_e(m.url)}</a>'
    if "package" in c:
        return _e(f"{c['package']}=={c.get('version', '?')}")
    if "file" in c:
        return _e(f"{c['file']} (sha256 {c.get('sha256', '')[:12]})")
    return _e(dumps(c, indent=None, sort_keys=True))


def _cell(text: str, sort: Any, num: bool = True) -> str:
    key = (repr(float(sort)) if math.isfinite(sort) else "") if num else str(sort)
    return f'<td{" class=num" if num else ""} data-sort="{_e(key)}">{text}</td>'


def _table(tid: str, headers: list[tuple[str, str]], rows: list[str], sortable: bool = True) -> str:
    ths = "".join(f'<th scope="col"{f" data-type={t}" if sortable and t else ""}>{_e(h)}</th>'
                  for h, t in headers)
    return (f'<table id="{_e(tid)}" data-testid="{_e(tid)}"{" class=sortable" if sortable else ""}>'
            f"<thead><tr>{ths}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-'
            f'Security-Policy" content="{_CSP}">\n<meta name="viewport" content="width=device-width">\n'
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{_JS}</script>\n</body>\n</html>\n")


def _slug(track: str) -> str:
    return "track-" + re.sub(r"[^A-Za-z0-9_-]", "-", track)


_BOARD = [("Rank", "number"), ("Method", "text"), ("Version", "text"),
          ("Mean test score ± 95 % CI", "number"), ("Seeds", "number"), ("Evaluations", "number"),
          ("Wall time (s)", "number"), ("Method time (s)", "number"), ("Code", "")]
_SEEDS = [("Seed", "number"), ("Test score", "number"), ("Evaluations", "number"), ("Failed", "number"),
          ("Wall time (s)", "number"), ("Method time (s)", "number")]


def _board_row(e: Entry) -> str:
    runs, m, n = e.loaded.result.runs, e.loaded.result.method, len(e.loaded.scores())
    ev, wall, mt = (_mean([getattr(x, k) for x in runs])
                    for k in ("evaluations", "wall_time_s", "method_time_s"))
    return ("<tr>" + _cell(str(e.rank), e.rank)
            + _cell(f'<a href="methods/{e.name}.html">{e.name}</a>', e.name, False)
            + _cell(_e(m.version), m.version, False) + _cell(f"{_f(e.mean)} ± {_f(e.ci)}", e.mean)
            + _cell(str(n), n) + _cell(_f(ev, 0), ev) + _cell(_f(wall, 1), wall) + _cell(_f(mt, 1), mt)
            + f"<td>{_code(e.loaded)}</td></tr>")


def _not_ranked(tid: str, entries: list[Entry]) -> str:
    rows = [f'<tr><td><a href="methods/{e.name}.html">{e.name}</a></td><td>{_e(_shown(e.loaded.path))}</td>'
            f"<td class=reason>{_e(e.reason)}</td></tr>" for e in entries]
    return f"<h3>Not ranked</h3>\n{_table(tid, [('Method', ''), ('File', ''), ('Reason', '')], rows, False)}"


def _index(boards: dict[str, list[Entry]], orphans: list[Entry], protocol: Protocol, names: list[str]) -> str:
    out = ["<h1>evobench leaderboard</h1>",
           f'<p class="muted">Protocol version {protocol.version} · α = {protocol.alpha:g} · test scores on '
           "each task's held-out test split, which the search never sees.</p>",
           "<nav>Tracks: " + " · ".join(f'<a href="#{_e(_slug(t))}">{_e(t)}</a>' for t in boards) + "</nav>"]
    for track, entries in boards.items():
        t, ranked = protocol.tracks[track], [_board_row(e) for e in entries if not e.reason]
        out += [f'<section id="{_e(_slug(track))}"><h2>{_e(track)}</h2>', f"<p>{_e(t.description)}</p>",
                f'<dl class="facts"><dt>Task</dt><dd>{_e(t.task.name)}</dd><dt>Budget</dt><dd>{t.budget} '
                f"evaluations</dd><dt>Seeds</dt><dd>{_e(', '.join(map(str, t.seeds)))}</dd></dl>",
                _table(f"board-{track}", _BOARD, ranked) if ranked else '<p class="muted">None ranked.</p>',
                f'<p class="note">{_e(_RULE.format(alpha=protocol.alpha))} Evaluations, wall and method '
                "time: means per seed. Click a column header to sort.</p>"]
        if unranked := [e for e in entries if e.reason]:
            out.append(_not_ranked(f"not-ranked-{track}", unranked))
        out.append("</section>")
    if orphans:
        out += ['<section id="other-tracks"><h2>Tracks not in the protocol</h2>',
                _not_ranked("not-ranked", orphans), "</section>"]
    links = "".join(f'<li><a href="methods/{n}.html">{n}</a></li>' for n in names)
    return _page("evobench leaderboard", "\n".join([*out, f"<h2>Methods</h2><ul>{links}</ul>"]))


def _track_section(e: Entry, on_index: bool) -> str:
    r, runs = e.loaded.result, sorted(e.loaded.result.runs, key=lambda x: x.seed)
    status = f"rank {e.rank}, mean {_f(e.mean)} ± {_f(e.ci)}" if not e.reason else f"not ranked: {e.reason}"
    rows = [f"<tr>{_cell(str(x.seed), x.seed)}{_cell(_f(_mean([x.test_score])), _mean([x.test_score]))}"
            f"{_cell(str(x.evaluations), x.evaluations)}{_cell(str(x.failed), x.failed)}"
            f"{_cell(_f(x.wall_time_s, 1), x.wall_time_s)}"
            f"{_cell(_f(x.method_time_s, 1), x.method_time_s)}</tr>" for x in runs]
    metrics = [f"<tr><td>{_e(k)}</td><td class=num>{_f(_mean([x.test_metrics.get(k) for x in runs]))}"
               "</td></tr>" for k in sorted({k for x in runs for k in x.test_metrics})]
    errors = [f"<li>seed {x.seed}: {_e(msg)}</li>" for x in runs for msg in x.errors][:50]
    hashes = "".join(f"<dt>{k}</dt><dd><code>{_e(v)}</code></dd>"
                     for k, v in sorted(r.hashes.model_dump().items()))
    anchor = _slug(r.track) if on_index else "other-tracks"
    out = [f'<section id="{_e(_slug(r.track))}">'
           f'<h2><a href="../index.html#{_e(anchor)}">{_e(r.track)}</a></h2>',
           f'<p class="{"reason" if e.reason else "muted"}">{_e(status)} · version {_e(r.method.version)} · '
           f"{_e(_shown(e.loaded.path))} · created {_e(r.created)}</p>",
           _table(f"seeds-{r.track}", _SEEDS, rows), curve_svg(runs, r.track)]
    if metrics:
        out += ["<h3>Test metrics (mean over seeds)</h3>",
                _table(f"metrics-{r.track}", [("Metric", ""), ("Mean", "")], metrics, False)]
    if errors:
        out.append("<h3>Errors</h3><ul>" + "".join(errors) + "</ul>")
    return "\n".join([*out, f'<h3>Hashes</h3><dl class="facts">{hashes}</dl></section>'])


def _method_page(name: str, entries: list[Entry], protocol: Protocol) -> str:
    first = entries[0].loaded  # the header shows the first track's result; each section names its own version
    m = first.result.method
    out = ['<p><a href="../index.html">← leaderboard</a></p>', f"<h1>{name}</h1>",
           f'<dl class="facts"><dt>Version</dt><dd>{_e(m.version)}</dd><dt>Authors</dt>'
           f'<dd>{_e(", ".join(m.authors))}</dd><dt>License</dt><dd>{_e(m.license)}</dd><dt>Code</dt>'
           f"<dd>{_code(first, False)}</dd><dt>Entry point</dt><dd>{_e(m.entry_point)}</dd>"
           + (f"<dt>URL</dt><dd>{_code(first)}</dd>" if m.url else "") + "</dl>",
           f"<h3>Hyperparameters</h3><pre>{_e(dumps(m.hyperparameters, indent=2, sort_keys=True))}</pre>"]
    out += [_track_section(e, e.loaded.result.track in protocol.tracks) for e in entries]
    return _page(f"{name} · evobench leaderboard", "\n".join(out))


def _md(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def summary_markdown(results: list[LoadedResult], protocol: Protocol) -> str:
    """One Markdown table per track (rank, method, mean ± CI, seeds, evaluations), then its unranked
    results, after a line that says how ranks and ties are decided."""
    boards, orphans = rank_tracks(results, protocol)

    def unranked(entries: list[Entry]) -> list[str]:
        return [f"- Not ranked: {e.name} ({_md(_shown(e.loaded.path))}): {_md(e.reason)}"
                for e in entries if e.reason]

    out = [f"Protocol version {protocol.version}. {_RULE.format(alpha=protocol.alpha)}", ""]
    for track, entries in boards.items():
        out += [f"### {_md(track)}", "",
                "| Rank | Method | Mean test score ± 95 % CI | Seeds | Evaluations |",
                "|---:|---|---:|---:|---:|"]
        out += [f"| {e.rank} | {e.name} | {_f(e.mean)} ± {_f(e.ci)} | {len(e.loaded.scores())} | "
                f"{_f(_mean([x.evaluations for x in e.loaded.result.runs]), 0)} |"
                for e in entries if not e.reason]
        out += ["", *unranked(entries), ""] if any(e.reason for e in entries) else [""]
    return "\n".join(out + unranked(orphans)).rstrip("\n") + "\n"


def build_site(results: list[LoadedResult], protocol: Protocol, out: Path) -> dict:
    """Write ``index.html``, ``methods/<name>.html`` and ``summary.md`` under ``out``; remove stale pages.

    Returns ``{"tracks": {track: [ranked method names, by mean]}, "not_ranked": [(path, reason)],
    "files": [written paths relative to out]}``. A method name outside ``[a-z0-9][a-z0-9-]*`` raises
    ValueError (one line) before anything is written."""
    out = Path(out)
    boards, orphans = rank_tracks(results, protocol)
    per_method: dict[str, list[Entry]] = {}
    for e in sorted([e for es in boards.values() for e in es] + orphans,
                    key=lambda e: (e.loaded.result.track, str(e.loaded.path))):
        per_method.setdefault(e.name, []).append(e)
    files = {"index.html": _index(boards, orphans, protocol, sorted(per_method)),
             "summary.md": summary_markdown(results, protocol)}
    files |= {f"methods/{n}.html": _method_page(n, es, protocol) for n, es in sorted(per_method.items())}
    (out / "methods").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        write_text(out / rel, text)
    for old in sorted((out / "methods").glob("*.html")):
        if f"methods/{old.name}" not in files:
            old.unlink()
    not_ranked = [(str(e.loaded.path), e.reason)
                  for es in [*boards.values(), orphans] for e in es if e.reason]
    return {"tracks": {t: [e.name for e in es if not e.reason] for t, es in boards.items()},
            "not_ranked": not_ranked, "files": sorted(files)}


def update_readme(readme: Path, markdown: str) -> bool:
    """Replace the lines between ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->`` with
    ``markdown``; returns whether the file changed. Missing markers raise ValueError (one line)."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"{readme}: needs one line {START} and, after it, one line {END} "
                         "to put the leaderboard between")
    body = [markdown.strip("\n") + "\n"] if markdown.strip() else []
    new = "".join(lines[: starts[0] + 1] + body + lines[ends[0]:])
    if new == text:
        return False
    write_text(readme, new)
    return True
