"""Fixtures of the browser tests: the built site served on 127.0.0.1, and headless Chromium.

`make browser-test` runs these after `make site`. The site is served from
`site/` by a `http.server` thread on a free local port; Chromium is Debian's
`chromium` driven through its `chromedriver` (the `chromium-driver` package,
installed by `make browser-deps`), so nothing is downloaded at test time.
Chromium resolves no host but 127.0.0.1, and every request it makes is
recorded, so a page that asks another host for anything fails the tests.
"""

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
SCREENSHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="session")
def site_url():
    if not (SITE / "index.html").is_file():
        pytest.fail(
            f"no built site in {SITE}: run `make site` (or `make site PROFILE=smoke`) first"
        )
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _binary(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"none of {names} found: run `make browser-deps` (Debian chromium, chromium-driver)"
    )


@pytest.fixture(scope="session")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Any host but the local server is unreachable (and its requests still logged).
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_binary("chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def requests_made(driver):
    """The URLs Chromium requested since the last call (from its performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def console_errors(driver):
    """The console errors since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
