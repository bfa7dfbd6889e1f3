"""The built site in a real browser.

Pages, figures, search, collapsed blocks, exercise boxes, downloads.
"""

import urllib.parse
import urllib.request

import pytest
from conftest import SCREENSHOTS, SITE, console_errors, requests_made
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

TUTORIAL_PAGES = sorted(p.parent.name for p in SITE.glob("tutorials/[0-9][0-9]_*/index.html"))
PAGES = ["", *[f"tutorials/{name}/" for name in TUTORIAL_PAGES]]
SEARCHES = {
    "positional encoding": "04_vision_transformer",
    "gradient accumulation": "06_training_techniques",
    "layer-wise learning rate": "02_fine_tuning",
    "masked language model": "05_pretrained_transformers",
}


def _open(browser, url):
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def test_the_site_has_every_tutorial_page():
    scripts = sorted(p.stem for p in (SITE.parent / "tutorials").glob("[0-9][0-9]_*.py"))
    assert TUTORIAL_PAGES == scripts


@pytest.mark.parametrize("page", PAGES, ids=[p or "home" for p in PAGES])
def test_page_loads_without_errors_or_other_hosts_and_its_figures_load(browser, site_url, page):
    requests_made(browser), console_errors(browser)  # start from a clean log
    _open(browser, f"{site_url}/{page}")
    title = browser.title
    assert title and "404" not in title, title
    broken = browser.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80))"
    )
    assert not broken, f"figures that did not load: {broken}"
    if page:
        assert browser.execute_script("return document.images.length") > 0, "no figure at all"
    local = urllib.parse.urlsplit(site_url).netloc
    foreign = [
        url
        for url in requests_made(browser)
        if urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss")
        and urllib.parse.urlsplit(url).netloc != local
    ]
    assert not foreign, f"requests to other hosts: {foreign}"
    errors = console_errors(browser)
    assert not errors, f"console errors: {errors}"
    if page in ("", "tutorials/03_attention/"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = "home" if not page else "tutorial_03"
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("query", SEARCHES)
def test_search_finds_the_right_tutorial_first(browser, site_url, query):
    _open(browser, f"{site_url}/")
    browser.execute_script("document.getElementById('__search').checked = true")  # open it
    field = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
    WebDriverWait(browser, 10).until(lambda d: field.is_displayed())
    field.send_keys(query)
    first = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, ".md-search-result__list .md-search-result__item a")
        )
    )
    href = first.get_attribute("href")
    assert SEARCHES[query] in href, f"{query!r}: first result {href}"


@pytest.mark.parametrize("kind", ["dl4keras-solution", "dl4keras-going-further"])
def test_solutions_and_going_further_start_collapsed_and_open_on_click(browser, site_url, kind):
    tag = {
        "dl4keras-solution": "celltag_solution",
        "dl4keras-going-further": "celltag_going-further",
    }
    found = 0
    for name in TUTORIAL_PAGES:
        _open(browser, f"{site_url}/tutorials/{name}/")
        WebDriverWait(browser, 15).until(  # every tagged cell ends up in a block
            lambda d: d.execute_script(
                "return Array.from(document.querySelectorAll(arguments[0]))"
                ".every(cell => cell.closest(arguments[1]))",
                f".{tag[kind]}",
                f"details.{kind}",
            )
        )
        blocks = browser.find_elements(By.CSS_SELECTOR, f"details.{kind}")
        for block in blocks:
            assert block.get_attribute("open") is None, f"{name}: a {kind} block starts open"
        outer = [  # a solution inside a collapsed Going-further section is out of sight
            block
            for block in blocks
            if not browser.execute_script(
                "return !!arguments[0].parentElement.closest('details')", block
            )
        ]
        if outer:
            summary = outer[0].find_element(By.TAG_NAME, "summary")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
            summary.click()
            assert outer[0].get_attribute("open") is not None, f"{name}: a click did not open it"
        found += len(blocks)
    assert found, f"no {kind} block on any tutorial page"


@pytest.mark.parametrize("name", TUTORIAL_PAGES)
def test_the_exercise_is_a_box_of_task_hints_collapsed_solution_and_self_check(
    browser, site_url, name
):
    _open(browser, f"{site_url}/tutorials/{name}/")
    boxes = browser.find_elements(By.CSS_SELECTOR, "div.admonition.dl4keras-exercise")
    assert len(boxes) == 1, f"{name}: {len(boxes)} exercise boxes"
    box = boxes[0]
    title = box.find_element(By.CSS_SELECTOR, ":scope > .admonition-title").text
    assert title.startswith("Exercise"), title
    # its heading stays in the page, out of sight, for the table of contents
    heading = box.find_element(By.TAG_NAME, "h2")
    assert not heading.is_displayed() or heading.size["height"] <= 1
    assert browser.find_elements(
        By.CSS_SELECTOR, f'.md-nav a[href="#{heading.get_attribute("id")}"]'
    )
    solution = box.find_element(By.CSS_SELECTOR, "details.dl4keras-solution")
    check = box.find_element(By.CSS_SELECTOR, ".dl4keras-self-check code")
    text = box.text
    parts = ("Task.", "Hints.", "Reference solution", "Self-check.")
    assert all(part in text for part in parts), f"{name}: {text[:300]}"
    assert sorted(parts, key=text.index) == list(parts), f"{name}: not in order: {text[:300]}"
    assert check.is_displayed() and check.text.startswith("check."), check.text
    assert solution.get_attribute("open") is None, f"{name}: the solution starts open"
    code = solution.find_element(By.CSS_SELECTOR, ".jp-Cell")
    assert not code.is_displayed(), f"{name}: the collapsed solution shows its code"
    summary = solution.find_element(By.TAG_NAME, "summary")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    assert solution.get_attribute("open") is not None and code.is_displayed()
    if name == "03_attention":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        summary.click()  # closed again: the box as a reader first sees it
        browser.execute_script(  # below Material's sticky header
            "window.scrollBy(0, arguments[0].getBoundingClientRect().top - 120)", box
        )
        box.screenshot(str(SCREENSHOTS / "exercise_03.png"))


@pytest.mark.parametrize("name", TUTORIAL_PAGES)
def test_download_links_point_at_existing_files(browser, site_url, name):
    _open(browser, f"{site_url}/tutorials/{name}/")
    links = [
        a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, ".dl4keras-stamp a[download]")
    ]
    assert any(link.endswith(".py") for link in links) and any(
        link.endswith(".ipynb") for link in links
    ), links
    for link in links:
        with urllib.request.urlopen(link, timeout=10) as response:  # the local server
            assert response.status == 200 and response.read(1), link
    colab = browser.find_element(By.CSS_SELECTOR, ".dl4keras-stamp a.dl4keras-colab")
    path = colab.get_attribute("href").split("/blob/main/", 1)[1]
    assert path == f"notebooks/{name}.ipynb" and (SITE.parent / path).is_file(), path
