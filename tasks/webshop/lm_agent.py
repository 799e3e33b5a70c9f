"""A language model as a WebShop agent: a ReAct-style prompt, greedy generation, the action parsed.

Each round, every running episode gets one prompt and all prompts go to the scoring engine in one
call (:class:`evobench.scoring.LMEngine` sorts and batches them), so episodes advance in step. The
prompt, in ReAct's ``Action:``/``Observation:`` layout::

    <HEADER>

    Observation: <the page before the last `history` actions>
    Action: <action>
    Observation: <the page it led to, or "Invalid action! <why>" (the page is unchanged)>
    ...
    Available actions: click[back to search], click[next >], click[b0...]
    Action:

The page the agent is on is always in the prompt: it is the first observation or that of the
last valid action shown. The ``compact`` prompt, for models with a short context (webshop-mini's
tiny agent), is the current page cut to its first :data:`COMPACT_FIELDS` ``[SEP]``-separated texts,
the episode's last ``history`` actions on one line (none: no line) and ``Action:`` (no header,
observations of earlier pages or action list)::

    <the current page, its first 16 texts>
    Actions: search[protein bars] click[b0c12cl4es] click[vanilla]
    Action:

(16 texts hold the search page, the results page's first three products, and an item page's
options and title.)
 Generation stops at a newline (``max_new_tokens`` at most). The action is the first
``search[...]`` or ``click[...]`` in the completion; a completion without one is passed on as it
is and the environment answers it as an invalid action (it counts as a step). With ``snap``, a
``click[...]`` that names no button of the page becomes the click of the page's most similar button
(rapidfuzz's ``ratio`` of the lower-cased texts; the first of equals), so a tiny model's near-copy of
an ASIN still clicks it; a page without buttons leaves the action as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evobench.tasks.webshop.env import SEP, Session

HEADER = ("You are shopping on WebShop for the instruction below. Answer each observation with one action: "
          "search[keywords] on the search page, or click[button] with a button from the available actions. "
          "Buy the item with click[buy now].")
STOP = ("\n",)
COMPACT_FIELDS = 16  # texts of the page a compact prompt keeps
_IN_TEXT = re.compile(r"(search|click)\[([^\[\]\n]*)\]")


def extract_action(completion: str) -> str:
    """The first ``search[...]``/``click[...]`` in ``completion``, else the completion stripped."""
    m = _IN_TEXT.search(completion)
    return f"{m.group(1)}[{m.group(2)}]" if m else completion.strip()


def compact_prompt(observation: str, actions: Sequence[str] = ()) -> str:
    """The compact prompt: the page's first :data:`COMPACT_FIELDS` texts, the ``actions`` taken so far
    (if any) on one line, then ``Action:``."""
    done = f"\nActions: {' '.join(actions)}" if actions else ""
    return f"{SEP.join(observation.split(SEP)[:COMPACT_FIELDS])}{done}\nAction:"


def snap_click(action: str, clickables: Sequence[str]) -> str:
    """``click[x]`` naming no button of ``clickables`` -> the click of the most similar one (see the
    module docstring); any other action as it is."""
    if not (action.startswith("click[") and action.endswith("]")) or not clickables:
        return action
    target = action[6:-1].strip().lower()
    if target in clickables:
        return action
    from rapidfuzz import fuzz

    best = max(clickables, key=lambda c: fuzz.ratio(target, c))  # max keeps the first of equals
    return f"click[{best}]"


def prompt(session: Session, history: int, compact: bool = False) -> str:
    """The ReAct-style prompt of a running episode, with its last ``history`` actions (``compact``:
    :func:`compact_prompt` of the current page)."""
    if compact:
        return compact_prompt(session.observation, session.actions[max(0, len(session.actions) - history):] if history else ())
    trace = session.trace
    start = max(0, len(trace) - history)
    before = session.first_observation if start == 0 else trace[start - 1][1]
    lines = [HEADER, "", f"Observation: {before}"]
    for action, page, error in trace[start:]:
        lines += [f"Action: {action}", f"Observation: {page if error is None else 'Invalid action! ' + error}"]
    lines += [f"Available actions: {', '.join(session.action_list())}", "Action:"]
    return "\n".join(lines)


class LMAgent:
    """Acts with ``model`` through ``engine``; keeps each episode's completions in ``session.memo``."""

    def __init__(self, engine, model, max_new_tokens: int = 32, history: int = 3, compact: bool = False,
                 snap: bool = False) -> None:
        self.engine, self.model = engine, model
        self.max_new_tokens, self.history, self.compact = int(max_new_tokens), int(history), bool(compact)
        self.snap = bool(snap)

    def actions(self, sessions: Sequence[Session]) -> list[str]:
        from evobench.scoring import GenerateRequest

        requests = [GenerateRequest(prompt(s, self.history, self.compact), STOP, self.max_new_tokens) for s in sessions]
        generations = self.engine.generate(self.model, requests)
        out = []
        for s, g in zip(sessions, generations, strict=True):
            s.memo.setdefault("completions", []).append(g.text)
            action = extract_action(g.text)
            out.append(snap_click(action, list(s.clickables())) if self.snap else action)
        return out
