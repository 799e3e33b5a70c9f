"""WebShop agents: the oracle scores 100 and the random agent near 0 on webshop-mini; the LM agent's
prompt, action parsing and step-synchronous batches."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("bm25s")
pytest.importorskip("rapidfuzz")

from evobench.scoring import Generation  # noqa: E402
from evobench.tasks.webshop.agents import OracleAgent, RandomAgent  # noqa: E402
from evobench.tasks.webshop.env import WebShop, run_episodes  # noqa: E402
from evobench.tasks.webshop.generated import generated_catalogue  # noqa: E402
from evobench.tasks.webshop.lm_agent import HEADER, LMAgent, extract_action, prompt  # noqa: E402
from tests.webshop_helpers import catalogue, goal, product  # noqa: E402


@pytest.fixture(scope="module")
def mini():
    return WebShop(generated_catalogue(0))


def test_oracle_scores_100_on_webshop_mini(mini):
    sessions = run_episodes(mini, mini.catalogue.goals, OracleAgent())
    rewards = np.array([s.reward for s in sessions])
    assert rewards.size == 196 and np.all(rewards == 1.0)  # score 100, success rate 1
    assert all(s.ended == "buy" and s.n_invalid == 0 and s.steps <= 6 for s in sessions)


def test_random_agent_scores_near_0_on_webshop_mini(mini):
    means = []
    for seed in (0, 1):
        sessions = run_episodes(mini, mini.catalogue.goals, RandomAgent(seed))
        means.append(np.mean([s.reward for s in sessions]))
        assert sum(s.reward == 1.0 for s in sessions) <= 1
        assert all(s.n_invalid == 0 for s in sessions)  # it only takes available actions
    assert max(means) < 0.03  # score below 3 (measured: 0.7 and 0.9)
    again = run_episodes(mini, mini.catalogue.goals[:20], RandomAgent(0))
    first = run_episodes(mini, mini.catalogue.goals[:20], RandomAgent(0))
    assert [s.actions for s in again] == [s.actions for s in first]


def test_oracle_opens_the_first_result_when_the_search_misses_the_target():
    chips = product(asin="B0000CHIPS", title="Crunchwell Potato Chips")
    other = product(asin="B000OTHER1", title="Crunchwell Chips Potato Bag", query="chips")
    shop = WebShop(catalogue([chips, other], [goal(asin="B0000CHIPS")]))
    shop._searches["crunchwell potato chips"] = [1]  # a search that does not find the target
    [s] = run_episodes(shop, shop.catalogue.goals, OracleAgent())
    assert s.actions == ["search[crunchwell potato chips]", "click[b000other1]", "click[buy now]"]
    assert s.asin == "B000OTHER1"


# ---- the LM agent ----------------------------------------------------------------------------------


def test_extract_action():
    assert extract_action(" click[Buy Now] because it fits") == "click[Buy Now]"
    assert extract_action("Thought: chips. search[gluten free chips]") == "search[gluten free chips]"
    assert extract_action("  I would buy it ") == "I would buy it"
    assert extract_action("click[]") == "click[]"


def test_prompt_layout():
    shop = WebShop(catalogue([product()], [goal(instruction_text="i need chips")]))
    s = shop.session(shop.catalogue.goals[0])
    start = "WebShop [SEP] Instruction: [SEP] i need chips [SEP] Search"
    assert prompt(s, 3) == f"{HEADER}\n\nObservation: {start}\nAvailable actions: search[<query>]\nAction:"
    s.step("search[chips]")
    s.step("click[oops]")
    results = ("Instruction: [SEP] i need chips [SEP] Back to Search [SEP] Page 1 (Total results: 1) [SEP] Next > "
               "[SEP] B000000001 [SEP] Crunchwell Potato Chips [SEP] $10.0")
    assert prompt(s, 1) == (f"{HEADER}\n\nObservation: {results}\nAction: click[oops]\n"
                            "Observation: Invalid action! no button 'oops' on this page\n"
                            "Available actions: click[back to search], click[next >], click[b000000001]\nAction:")
    assert prompt(s, 0).endswith(f"Observation: {results}\nAvailable actions: click[back to search], "
                                 "click[next >], click[b000000001]\nAction:")


class TextPolicyEngine:
    """A stand-in LM that reads only its prompts: it searches the instruction, opens the first result and
    buys; for an instruction about widgets it answers with no action at all."""

    def __init__(self):
        self.batches: list[int] = []

    def generate(self, model, requests):
        self.batches.append(len(requests))
        out = []
        for r in requests:
            available = r.prompt.rsplit("Available actions: ", 1)[1]
            instruction = re.findall(r"Instruction: \[SEP\] (.*?) \[SEP\]", r.prompt)[-1]
            if "widget" in instruction:
                text = " let me think"
            elif available.startswith("search["):
                text = f" search[{instruction}]"
            elif "click[buy now]" in available:
                text = " click[Buy Now]"
            else:
                text = " " + re.findall(r"click\[b0[^\]]*\]", available)[0].upper().replace("CLICK", "click")
            out.append(Generation(text, 10, 5, "stop", "\n"))
        return out


def test_lm_agent_plays_batched_episodes_from_its_prompts():
    chips = product(asin="B0000CHIPS", title="Crunchwell Potato Chips", bullet_points=("Gluten free",))
    widget = product(asin="B0000WIDGT", title="Widget", query="widget")
    goals = [goal(asin="B0000CHIPS", instruction_text="i need gluten free potato chips"),
             goal(asin="B0000WIDGT", name="Widget", query="widget", instruction_text="a widget please")]
    shop = WebShop(catalogue([chips, widget], goals), step_limit=4)
    engine = TextPolicyEngine()
    sessions = run_episodes(shop, goals, LMAgent(engine, model=None, max_new_tokens=8, history=2))
    assert engine.batches == [2, 2, 2, 1]  # one call per round for the episodes still running
    s, w = sessions
    assert s.actions == ["search[i need gluten free potato chips]", "click[B0000CHIPS]", "click[Buy Now]"]
    assert s.reward == 1.0 and s.memo["completions"][1] == " click[B0000CHIPS]"  # gluten free in the bullets
    assert w.actions == ["let me think"] * 4 and w.n_invalid == 4 and w.ended == "step limit" and w.reward == 0.0


def test_compact_prompt_is_the_current_page_and_the_last_actions():
    shop = WebShop(catalogue([product()], [goal(instruction_text="i need chips")]))
    s = shop.session(shop.catalogue.goals[0])
    assert prompt(s, 3, compact=True) == "WebShop [SEP] Instruction: [SEP] i need chips [SEP] Search\nAction:"
    s.step("search[chips]")
    s.step("click[oops]")  # invalid: the page is unchanged; the action is shown as it was taken
    page = ("Instruction: [SEP] i need chips [SEP] Back to Search [SEP] Page 1 (Total results: 1) [SEP] Next > "
            "[SEP] B000000001 [SEP] Crunchwell Potato Chips [SEP] $10.0")
    assert prompt(s, 3, compact=True) == f"{page}\nActions: search[chips] click[oops]\nAction:"
    assert prompt(s, 1, compact=True) == f"{page}\nActions: click[oops]\nAction:"
    assert prompt(s, 0, compact=True) == f"{page}\nAction:"


def test_snap_click_picks_the_most_similar_button_of_the_page():
    from evobench.tasks.webshop.lm_agent import snap_click

    buttons = ["back to search", "next >", "b0c12cl4es", "b0xv2gg66x"]
    assert snap_click("click[B0C12CL4FS]", buttons) == "click[b0c12cl4es]"  # one character off
    assert snap_click("click[b0xv2g66x]", buttons) == "click[b0xv2gg66x]"  # one character missing
    assert snap_click("click[next>]", buttons) == "click[next >]"
    assert snap_click("click[B0C12CL4ES]", buttons) == "click[B0C12CL4ES]"  # a button already (any case)
    assert snap_click("search[chips]", buttons) == "search[chips]"  # not a click
    assert snap_click("buy it", buttons) == "buy it"
    assert snap_click("click[x]", []) == "click[x]"  # the search page has no buttons
    assert snap_click("click[zz]", ["ab", "cd"]) == "click[ab]"  # equally far: the first


def test_lm_agent_snaps_only_when_asked():
    class Typo:
        def generate(self, model, requests):
            return [Generation(" click[b00000000l]", 1, 1, "stop", "\n") for _ in requests]

    shop = WebShop(catalogue([product()], [goal(instruction_text="i need chips")]), step_limit=2)
    for snap, page, n_invalid in ((False, "results", 1), (True, "item", 0)):
        s = shop.session(shop.catalogue.goals[0])
        s.step("search[chips]")
        s.step(LMAgent(Typo(), None, 8, compact=True, snap=snap).actions([s])[0])
        assert (s.page, s.n_invalid) == (page, n_invalid)
        assert s.memo["completions"] == [" click[b00000000l]"]


def test_lm_agent_compact_mode_sends_compact_prompts():
    class Recorder:
        prompts: list[str] = []

        def generate(self, model, requests):
            self.prompts += [r.prompt for r in requests]
            return [Generation(" click[buy now]", 1, 1, "stop", "\n") for _ in requests]

    shop = WebShop(catalogue([product()], [goal(instruction_text="i need chips")]), step_limit=1)
    engine = Recorder()
    run_episodes(shop, shop.catalogue.goals, LMAgent(engine, None, 8, history=3, compact=True))
    assert engine.prompts == ["WebShop [SEP] Instruction: [SEP] i need chips [SEP] Search\nAction:"]


def test_compact_prompt_keeps_the_first_16_texts_of_a_page():
    from evobench.tasks.webshop.lm_agent import compact_prompt

    page = " [SEP] ".join(f"t{i}" for i in range(20))
    assert compact_prompt(page) == " [SEP] ".join(f"t{i}" for i in range(16)) + "\nAction:"
    assert compact_prompt("a [SEP] b") == "a [SEP] b\nAction:"
    assert compact_prompt("a [SEP] b", ["search[x]", "click[y]"]) == "a [SEP] b\nActions: search[x] click[y]\nAction:"
