"""Browser safety in a real browser (issue 17, item 5): Debian's Chromium, driven by
Playwright, opens a page served from another origin, which tries what any web page can do
to a local server without a preflight: an auto-submitted form POST, a `no-cors` fetch and a
multipart upload. The gateway (`easel serve all` over loopback HTTP) refuses each one, and
it shows: no job was made or cancelled, and each refusal is an audit line. A page from an
origin in EASEL_CORS_ORIGINS then sends JSON (after a preflight) and reads the answer.

Chromium must be installed (`make test` installs it where it can): without it this test
fails, it does not skip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.browser import chromium
from tests.support.servers import ServerProcess, start_server

PAGE = b"""<!doctype html>
<title>another site</title>
<form id="job" method="POST"><input name="prompt" value="a fox"></form>
<script>
function submitForm(url) {
  const form = document.getElementById("job");
  form.action = url;
  form.submit();
}
async function sendWithoutCors(gateway, jobId) {
  await fetch(gateway + "/api/generate/cancel/" + jobId, {mode: "no-cors", method: "POST"});
  const upload = new FormData();
  const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  upload.append("image", new Blob([png], {type: "image/png"}), "x.png");
  for (const [name, value] of [["x", "0"], ["y", "0"], ["width", "1"], ["height", "1"]]) {
    upload.append(name, value);
  }
  await fetch(gateway + "/api/image-utils/crop", {mode: "no-cors", method: "POST", body: upload});
}
async function submitJson(gateway) {
  const answer = await fetch(gateway + "/api/generate/async", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({prompt: "a fox", steps: 2}),
  });
  return {status: answer.status, body: await answer.json()};
}
</script>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@dataclass
class Site:
    """A tiny web server on a loopback port of its own: another origin than the gateway."""

    server: ThreadingHTTPServer

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[Site, Site]]:
    """(a foreign site, a friendly one whose origin the gateway allows)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Site(servers[0]), Site(servers[1])
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gateway(
    sites: tuple[Site, Site], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    _, friend = sites
    env = {
        "EASEL_CORS_ORIGINS": f'["{friend.origin}"]',
        "EASEL_JOBS_IN_PROCESS_WORKER": "false",  # jobs stay queued: nothing else moves them
        "EASEL_JOBS_SUBMIT_CHECK": "false",
        "EASEL_LOG_LEVEL": "INFO",  # the audit and access lines
    }
    server = start_server("all", tmp_path_factory.mktemp("chromium"), env=env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as browser:
        yield browser.new_page()


def _jobs(gateway: ServerProcess) -> list[dict[str, Any]]:
    """Every job, asked the way curl would (no Origin)."""
    answer = httpx.get(f"{gateway.url}/api/jobs", params={"limit": 500}, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["jobs"])


def test_a_foreign_page_can_neither_submit_cancel_nor_upload(
    page: Page, gateway: ServerProcess, sites: tuple[Site, Site]
) -> None:
    foreign, _ = sites
    target = httpx.post(f"{gateway.url}/api/generate/async", json={"prompt": "mine"}, timeout=30)
    assert target.status_code == 202, target.text
    task_id = target.json()["task_id"]

    page.goto(f"{foreign.origin}/page.html")
    with page.expect_response(lambda r: r.url.endswith("/api/generate/async")) as form:
        page.evaluate("url => submitForm(url)", f"{gateway.url}/api/generate/async")
    assert form.value.status == 403
    # The form navigates to the refusal: let that navigation end before the next one.
    page.wait_for_url(f"{gateway.url}/api/generate/async")
    page.goto(f"{foreign.origin}/page.html")
    page.evaluate("([gateway, id]) => sendWithoutCors(gateway, id)", [gateway.url, task_id])

    jobs = _jobs(gateway)
    assert [(job["task_id"], job["status"]) for job in jobs] == [(task_id, "queued")]
    log = gateway.log()
    for path in ("/api/generate/async", f"/api/generate/cancel/{task_id}", "/api/image-utils/crop"):
        refusal = f"audit origin refused key=- method=POST path={path} origin={foreign.origin}"
        assert log.count(refusal) == 1, (path, log)


def test_an_allowed_origin_sends_json_after_a_preflight_and_reads_the_answer(
    page: Page, gateway: ServerProcess, sites: tuple[Site, Site]
) -> None:
    _, friend = sites
    page.goto(f"{friend.origin}/page.html")
    answer = page.evaluate("gateway => submitJson(gateway)", gateway.url)
    assert answer["status"] == 202, answer
    task_id = answer["body"]["task_id"]
    status = httpx.get(f"{gateway.url}/api/generate/status/{task_id}", timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "queued"
    assert "gateway OPTIONS /api/generate/async 200" in gateway.log()
