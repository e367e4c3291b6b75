"""report.html as a reviewer sees it in Jenkins: Debian's Chromium, driven by Playwright,
loads it from a server that sends Jenkins' default Content-Security-Policy for archived
files. The plot loads, the stylesheet applies, the verdict is on the first screen at
1280x800, and the page logs no error."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from mlbuild.accuracy.report import write_reports
from tests.unit.test_report import evaluation

pytestmark = pytest.mark.integration

#: what Jenkins sends with files it serves from a build (hudson.model.DirectoryBrowserSupport.CSP)
JENKINS_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'self';"
CHROMIUM = "/usr/bin/chromium"
FAILED_RED = "rgb(253, 231, 231)"
PASSED_GREEN = "rgb(227, 244, 230)"


class _JenkinsLikeHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Content-Security-Policy", JENKINS_CSP)
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    servers = []

    def serve_folder(folder):
        handler = functools.partial(_JenkinsLikeHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve_folder
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert shutil.which(CHROMIUM), "Debian's chromium is not installed: run `make services`"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def look_at(browser, url, screenshot):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
    page.goto(f"{url}/report.html", wait_until="load")
    page.screenshot(path=screenshot, full_page=True)
    return page, problems


@pytest.mark.parametrize("failing", [True, False], ids=["failed", "passed"])
def test_the_report_reads_at_a_glance_under_jenkins_csp(browser, serve, tmp_path, failing):
    ev = evaluation(classes=10, collapse=failing, required=("r10",) if failing else ())
    assert ev.passed is not failing
    folder = tmp_path / "report"
    write_reports(ev, folder, "Accuracy (fast tier)")
    page, problems = look_at(browser, serve(folder), tmp_path / "report.png")

    assert problems == []
    images = page.eval_on_selector_all("img", "els => els.map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width == 800 for done, width in images)  # loaded, 800 px

    verdict = page.locator("#verdict")
    box = verdict.bounding_box()
    assert verdict.is_visible() and box["y"] + box["height"] <= 800  # on the first screen
    assert verdict.inner_text().startswith("FAILED" if failing else "PASSED")
    background = verdict.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == (FAILED_RED if failing else PASSED_GREEN)  # report.css applied

    rows = page.locator("tbody tr").first
    if failing:  # the failed gates come first, marked in words and colour
        assert "FAIL" in rows.inner_text()
        assert rows.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor") \
            == FAILED_RED
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280  # nothing wider than the window
