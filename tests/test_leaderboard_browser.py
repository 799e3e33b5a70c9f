"""The built leaderboard site in a real browser (headless Chromium through Selenium), offline from file://.

Skipped when Chromium, chromedriver or selenium are missing, unless ``EVOBENCH_REQUIRE_BROWSER=1``
(CI sets it): then the missing piece fails the test instead. The screenshot is written to
``$EVOBENCH_TEST_ARTIFACTS/leaderboard.png`` (default: the test's tmp_path) for a person to look at.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from evobench.leaderboard.results import load_results
from evobench.leaderboard.site import TAMPERED, build_site
from tests.test_leaderboard_site import DIGITS, PROTOCOL, _tamper, write_standard

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _find(path: str) -> str | None:
    """``path`` when it is an executable file, else the same name on PATH (None when neither)."""
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else shutil.which(Path(path).name)


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = _find(CHROMIUM), _find(CHROMEDRIVER)
    why = ("selenium is not installed" if importlib.util.find_spec("selenium") is None
           else f"{CHROMIUM} is not installed" if chromium is None
           else f"{CHROMEDRIVER} is not installed" if chromedriver is None else None)
    if why:
        if os.environ.get("EVOBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EVOBENCH_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"no headless browser: {why} (set EVOBENCH_REQUIRE_BROWSER=1 to fail instead)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1200",
                "--disable-gpu", "--no-first-run", "--disable-extensions", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see CSP violations and script errors
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_page_load_timeout(10)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("leaderboard")
    write_standard(root)
    _tamper(root)
    build_site(load_results(root / "results"), PROTOCOL, root / "site")
    return root / "site"


def _rows(driver, table: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [[c.text for c in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def _sort_keys(driver, table: str, column: int) -> list[float]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(r => parseFloat(r.cells[arguments[1]]"
        ".dataset.sort))", f"#{table} tbody tr", column)


def test_index_table_sorting_links_method_page_and_screenshot(browser, site, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    assert browser.title == "evobench leaderboard"
    assert [r[1] for r in _rows(browser, "board-digits")] == ["steady", "shifted", "weak"]
    assert [r[0] for r in _rows(browser, "board-digits")] == ["1", "2", "3"]
    assert [r[1] for r in _rows(browser, "board-wine")] == ["noisy-b", "noisy-a"]
    assert _rows(browser, "not-ranked-digits") == [["cheater", "cheater/digits.json", TAMPERED]]
    # no CSP violation or script error: the page's own style and script are admitted
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    # a full-page screenshot in rank order, for a person to look at
    shot = Path(os.environ.get("EVOBENCH_TEST_ARTIFACTS", tmp_path)) / "leaderboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, browser.execute_script("return document.body.scrollHeight") + 120)
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height >= 600 and len(data) > 20_000

    # clicking the mean-score header: ascending, then descending (row order read back from the DOM)
    header = browser.find_element(By.XPATH,
                                  "//table[@id='board-digits']//th[starts-with(., 'Mean test score')]")
    means = {n: sum(v) / len(v) for n, v in DIGITS.items()}
    header.click()
    assert [r[1] for r in _rows(browser, "board-digits")] == ["weak", "shifted", "steady"]
    keys = _sort_keys(browser, "board-digits", 3)
    assert keys == sorted(keys) and keys[0] == pytest.approx(means["weak"])
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [r[1] for r in _rows(browser, "board-digits")] == ["steady", "shifted", "weak"]
    assert _sort_keys(browser, "board-digits", 3) == sorted(keys, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    browser.find_element(By.XPATH, "//table[@id='board-digits']//th[.='Method']").click()
    assert [r[1] for r in _rows(browser, "board-digits")] == ["shifted", "steady", "weak"]

    # every link resolves: file:// targets exist (a #fragment names an element there); https: the method url
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href]")]
    pages = set()
    for href in hrefs:
        url = urlparse(href)
        if url.scheme == "https":
            assert href == "https://example.org/m"
            continue
        assert url.scheme == "file", href
        target = Path(unquote(url.path))
        assert target.is_file(), href
        pages.add(target.name)
        if url.fragment:
            assert target == site / "index.html"
            assert browser.find_elements(By.ID, url.fragment), href
    methods = ["cheater", "noisy-a", "noisy-b", "shifted", "steady", "weak"]
    assert pages == {"index.html", *(f"{n}.html" for n in methods)}

    # a method page: heading, per-seed table and SVG curve (one polyline per seed, one for the mean)
    browser.find_element(By.XPATH, "//table[@id='board-digits']//a[.='steady']").click()
    assert Path(unquote(urlparse(browser.current_url).path)) == site / "methods" / "steady.html"
    assert browser.find_element(By.TAG_NAME, "h1").text == "steady"
    assert [r[0] for r in _rows(browser, "seeds-digits")] == ["0", "1", "2", "3", "4"]
    curve = browser.find_element(By.CSS_SELECTOR, "svg[data-testid='curve-digits']")
    assert len(curve.find_elements(By.CSS_SELECTOR, "polyline.seed")) == 5
    assert len(curve.find_elements(By.CSS_SELECTOR, "polyline.mean")) == 1
    assert curve.size["width"] > 300 and curve.size["height"] > 150
    browser.set_window_size(1280, browser.execute_script("return document.body.scrollHeight") + 120)
    browser.save_screenshot(str(shot.with_name("leaderboard-method.png")))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_committed_site_renders_its_ranked_tables(browser, tmp_path):
    """The site committed under leaderboard/site (the project's baselines on digits and ja-math-mini)."""
    from evobench.leaderboard.protocol import load_protocol

    board = Path(__file__).resolve().parent.parent / "leaderboard"
    ranked = {r.result.track: set() for r in load_results(board / "results")}
    for r in load_results(board / "results"):
        ranked[r.result.track].add(r.result.method.name)
    browser.get((board / "site" / "index.html").as_uri())
    for track in load_protocol(board / "protocol.yaml").tracks:
        rows = _rows(browser, f"board-{track}")
        assert {row[1] for row in rows} == ranked[track]
        ranks = [int(row[0]) for row in rows]
        assert ranks[0] == 1 and ranks == sorted(ranks)
    out = Path(os.environ.get("EVOBENCH_TEST_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(out / "leaderboard-committed.png"))
    assert (out / "leaderboard-committed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
