"""The playground page (issue 19) in a real browser: Debian's Chromium driven by Playwright,
against the all-in-one server (`easel serve all`) with the tiny random models.

Generate streams progress and previews into a gallery; the Edit tab turns a click on a
scene into a smart mask drawn over it, refines it, and inpaints with it; jobs appear in the
list and cancel; every image-utils op answers beside its input; health lists the services;
a server with keys gets its key through the page. Every request the page makes is recorded,
and any to a host other than this machine's loopback is refused and fails the test.
Nothing waits on wall time: each step waits for a state the page shows.

Screenshots go to build/test-artifacts/playground/. Chromium must be installed (`make test`
installs it): without it these tests fail, they do not skip.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from tests.support.browser import chromium
from tests.support.servers import ROOT, ServerProcess, start_server

ARTIFACTS = ROOT / "build" / "test-artifacts" / "playground"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SLOW = 90_000  # ms: a deadline for what the server does (a model's first load included)
QUICK = 30_000  # ms: for what the page does by itself
PHONE = ViewportSize(width=390, height=844)
# The scene the Edit tab masks: a red disc on sky and grass (its centre: the canvas's).
SCENE_SIZE = (160, 120)
DISC = (50, 30, 110, 90)


@dataclass
class Traffic:
    """Every URL the pages asked for, and those refused for leaving this machine."""

    urls: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


def _stays_here(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob"):
        return True
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # 1000 steps (the scheduler's most) make a job that runs far longer than any test:
    # it is still running when the test cancels it, whatever this machine's speed.
    env = {"EASEL_MAX_STEPS": "1000"}
    server = start_server("all", tmp_path_factory.mktemp("playground"), env=env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        yield browser


def _guarded_context(browser: Browser, traffic: Traffic, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)

    def guard(route: Route) -> None:
        url = route.request.url
        traffic.urls.append(url)
        if _stays_here(url):
            route.continue_()
        else:
            traffic.foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    context.on("request", lambda request: traffic.urls.append(request.url))
    return context


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture(scope="module")
def context(browser: Browser, traffic: Traffic) -> Iterator[BrowserContext]:
    context = _guarded_context(browser, traffic, viewport={"width": 1000, "height": 760})
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, traffic: Traffic, server: ServerProcess) -> Iterator[Page]:
    """A fresh page of the playground; afterwards, no request of it left this machine."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert traffic.foreign == [], f"requests to other hosts: {traffic.foreign}"
    assert errors == [], f"script errors on the page: {errors}"


def _open(page: Page, server: ServerProcess, tab: str = "generate") -> None:
    page.goto(f"{server.url}/#{tab}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=QUICK)


def _shot(page: Page, name: str, **options: Any) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


def _scene() -> FilePayload:
    scene = Image.new("RGB", SCENE_SIZE, (200, 210, 220))
    draw = ImageDraw.Draw(scene)
    draw.rectangle((0, 95, SCENE_SIZE[0], SCENE_SIZE[1]), fill=(90, 140, 80))
    draw.ellipse(DISC, fill=(220, 40, 30))
    out = io.BytesIO()
    scene.save(out, "PNG")
    return FilePayload(name="scene.png", mimeType="image/png", buffer=out.getvalue())


def _body(request: Request) -> dict[str, Any]:
    body = request.post_data_json
    assert isinstance(body, dict), request.post_data
    return body


def _fill(page: Page, panel: str, values: dict[str, str]) -> None:
    scope = page.locator(f"#panel-{panel}")
    for label, value in values.items():
        scope.get_by_label(label, exact=True).fill(value)


# Every caption the progress box showed and every preview it drew, whatever their pace.
RECORD_PROGRESS = """box => {
  window.seen = {captions: [], previews: 0};
  new MutationObserver(records => {
    for (const r of records) {
      if (r.type === "attributes" && r.attributeName === "src") window.seen.previews++;
      for (const node of r.addedNodes) window.seen.captions.push(node.textContent);
    }
  }).observe(box, {subtree: true, childList: true, attributes: true});
}"""


def test_generate_shows_progress_and_previews_then_the_images(
    page: Page, server: ServerProcess
) -> None:
    _open(page, server)
    panel = page.locator("#panel-generate")
    expect(panel.get_by_label("Model")).to_contain_text("tiny-random", timeout=QUICK)
    expect(panel.get_by_label("Style")).to_contain_text("watercolor")
    prompt = "a lighthouse on a cliff at dusk"
    _fill(page, "generate", {"Prompt": prompt, "Width": "64", "Height": "64", "Steps": "4"})
    _fill(page, "generate", {"Seed": "7", "Count": "2", "Guidance": "6"})
    page.locator("#gen-progress-box").evaluate(RECORD_PROGRESS)
    with page.expect_request("**/api/generate/stream") as sent:
        panel.get_by_role("button", name="Generate", exact=True).click()
    body = _body(sent.value)
    assert body == {
        "prompt": prompt,
        "width": 64,
        "height": 64,
        "steps": 4,
        "guidance_scale": 6,
        "seed": 7,
        "num_images": 2,
        "preview_every": 1,
    }

    cards = page.locator("#gallery figure.card")
    expect(cards).to_have_count(2, timeout=SLOW)
    caption = page.locator("#gen-progress-box .caption")
    expect(caption).to_contain_text("Done: 2 image(s)")
    seen = page.evaluate("window.seen")
    steps = [text for text in seen["captions"] if text.startswith("Step ")]
    assert steps == [f"Step {i} / 4" for i in range(1, 5)], seen
    assert seen["previews"] >= 1, seen
    expect(page.locator("#gen-progress-box img.preview")).to_be_visible()
    bar = page.locator("#gen-progress-box progress")
    assert bar.evaluate("b => b.value === b.max")

    first = cards.first
    expect(first.locator("img.result")).to_have_js_property("naturalWidth", 64)
    expect(first).to_contain_text(prompt)
    expect(first).to_contain_text("64×64")
    expect(first).to_contain_text("tiny-random")
    seeds = sorted(int(s) for s in cards.evaluate_all("cs => cs.map(c => c.dataset.seed)"))
    assert seeds == [7, 8]
    download = first.get_by_role("link", name="Download")
    expect(download).to_have_attribute("href", re.compile(r"^data:image/png;base64,"))
    expect(download).to_have_attribute("download", re.compile(r"\.png$"))
    _shot(page, "generate")

    first.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")
    canvas = page.locator("#edit-canvas")
    expect(canvas).to_be_visible()
    expect(canvas).to_have_attribute("width", "64")


def test_a_refused_request_shows_the_servers_message_inline(
    page: Page, server: ServerProcess
) -> None:
    _open(page, server)
    _fill(page, "generate", {"Prompt": "too long", "Steps": "5000"})
    page.locator("#panel-generate").get_by_role("button", name="Generate", exact=True).click()
    error = page.locator("#gen-error")
    expect(error).to_be_visible(timeout=QUICK)
    expect(error).to_contain_text("steps")
    expect(error).to_contain_text("invalid_input")
    expect(error).to_contain_text("HTTP 422")
    expect(page.locator("#gen-progress-box .caption")).to_have_text("Failed.")


def _pixel(page: Page, x: int, y: int) -> list[int]:
    script = "([x, y]) => [...document.getElementById('edit-canvas').getContext('2d')"
    script += ".getImageData(x, y, 1, 1).data]"
    return list(page.evaluate(script, [x, y]))


def test_a_click_on_a_scene_masks_the_object_and_inpaint_uses_the_mask(
    page: Page, server: ServerProcess
) -> None:
    _open(page, server, "edit")
    page.locator("#edit-file").set_input_files(files=[_scene()])
    canvas = page.locator("#edit-canvas")
    expect(canvas).to_have_attribute("width", str(SCENE_SIZE[0]), timeout=QUICK)
    assert _pixel(page, 80, 60)[:3] == [220, 40, 30]  # the disc, as drawn

    with page.expect_request("**/api/smart-mask") as sent:
        canvas.click()  # the centre: the disc's
    assert _body(sent.value)["points"] == [[80, 60]]
    assert _body(sent.value)["labels"] == [1]
    # The image went up once (prepare); the clicks send only its id.
    assert _body(sent.value)["image_id"] and "image" not in _body(sent.value)
    expect(canvas).to_have_attribute("data-mask", "shown", timeout=SLOW)
    info = page.locator("#edit-mask-info")
    expect(info).to_contain_text("Mask: ")
    area = int(info.inner_text().split("Mask: ")[1].split(" px")[0])
    disc_area = 3.14159 * ((DISC[2] - DISC[0]) / 2) ** 2
    assert 0.7 * disc_area < area < 1.3 * disc_area, info.inner_text()
    # The overlay tints the disc and leaves the sky as it was.
    assert _pixel(page, 80, 60)[:3] != [220, 40, 30]
    assert _pixel(page, 10, 10)[:3] == [200, 210, 220]
    _shot(page, "edit-mask")

    # A shift-click excludes; a drag draws a box.
    with page.expect_request("**/api/smart-mask") as sent:
        canvas.click(position={"x": 20, "y": 20}, modifiers=["Shift"])
    assert _body(sent.value)["labels"] == [1, 0]
    expect(info).to_contain_text("Mask: ", timeout=SLOW)
    page.get_by_role("button", name="Clear points").click()
    expect(canvas).to_have_attribute("data-mask", "none")
    box = canvas.bounding_box()
    assert box is not None
    scale = box["width"] / SCENE_SIZE[0]
    with page.expect_request("**/api/smart-mask") as sent:
        page.mouse.move(box["x"] + 45 * scale, box["y"] + 25 * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + 80 * scale, box["y"] + 60 * scale, steps=4)
        page.mouse.move(box["x"] + 115 * scale, box["y"] + 95 * scale, steps=4)
        page.mouse.up()
    asked = _body(sent.value)
    assert asked["points"] == [] and len(asked["box"]) == 4, asked
    expect(canvas).to_have_attribute("data-mask", "shown", timeout=SLOW)

    page.get_by_role("button", name="Refine mask").click()
    expect(info).to_contain_text("Mask refined: dilate 4 px, feather 2 px", timeout=SLOW)
    expect(page.get_by_role("link", name="Download mask")).to_be_visible()

    page.get_by_label("Edit prompt").fill("a yellow sun")
    page.locator("#edit-steps").fill("2")
    with page.expect_request("**/api/generate/stream") as sent:
        page.get_by_role("button", name="Inpaint the mask").click()
    asked = _body(sent.value)
    assert asked["mode"] == "inpaint" and asked["prompt"] == "a yellow sun"
    assert asked["input_image"] and asked["mask_image"], sorted(asked)
    results = page.locator("#edit-results figure.card")
    expect(results).to_have_count(1, timeout=SLOW)
    expect(results.first.locator("dd").first).to_have_text("inpaint")  # its mode
    expect(results.first.locator("img.result")).to_have_js_property("naturalWidth", SCENE_SIZE[0])

    page.get_by_role("button", name="Edit the whole image").click()
    expect(results).to_have_count(2, timeout=SLOW)
    expect(results.first.locator("dd").first).to_have_text("edit")
    _shot(page, "edit-inpainted", full_page=True)


def test_every_image_util_answers_beside_its_input(page: Page, server: ServerProcess) -> None:
    _open(page, server, "utils")
    panel = page.locator("#panel-utils")
    scene = _scene()
    ops = {
        "resize": ({"Scale (instead of a size)": "0.5"}, "80×60 png"),
        "crop": ({"Width": "40", "Height": "20"}, "40×20 png"),
        "convert": ({}, "160×120 webp"),
        "extract-object": ({}, "160×120 png"),
        "diff": ({}, "MAE 0.00"),
        "canny": ({}, "160×120 png"),
        "mask": ({"Dilate (px)": "3", "Feather (px)": "1.5"}, "160×120 png"),
    }
    for op, (values, shown) in ops.items():
        panel.get_by_label("Operation").select_option(op)
        for input_ in panel.locator('#util-fields input[type="file"]').all():
            input_.set_input_files(files=[scene])
        for label, value in values.items():
            panel.get_by_label(label, exact=True).fill(value)
        if op == "convert":
            panel.get_by_label("Output format").select_option("webp")
        count = panel.locator('#util-fields input[type="file"]').count()
        expect(panel.locator("#util-inputs img")).to_have_count(count)
        panel.get_by_role("button", name="Run").click()
        expect(panel.locator("#util-result figure")).to_contain_text(shown, timeout=SLOW)
        expect(panel.locator("#util-error")).to_be_hidden()
        expect(panel.locator("#util-result img")).to_be_visible()
    _shot(page, "image-utils")


def test_health_lists_every_service(page: Page, server: ServerProcess) -> None:
    _open(page, server, "health")
    rows = page.locator("#health-rows tr")
    expect(rows).to_have_count(4, timeout=QUICK)
    for name in ("generation", "segmentation", "image_utils", "job_manager"):
        expect(page.locator(f'#health-rows tr[data-service="{name}"] .badge')).to_have_text(
            "healthy"
        )
    expect(page.locator("#health-overall")).to_contain_text("healthy")
    expect(page.locator("#key-panel")).to_be_hidden()  # this server has no keys
    _shot(page, "health")


def test_at_phone_width_the_controls_are_visible(page: Page, server: ServerProcess) -> None:
    page.set_viewport_size(PHONE)
    _open(page, server)
    outside = """() => [...document.querySelectorAll(
        '[role=tab], [role=tabpanel]:not([hidden]) :is(input, select, textarea, button, canvas)')]
      .filter(e => e.offsetParent !== null)
      .filter(e => { const r = e.getBoundingClientRect();
                     return r.left < -1 || r.right > innerWidth + 1 || r.width < 1; })
      .map(e => e.id || e.textContent.trim() || e.outerHTML.slice(0, 60))"""
    for tab in ("Generate", "Edit", "Jobs", "Image utils", "Health"):
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("tab", name=tab)).to_be_in_viewport()
        assert page.evaluate(outside) == [], tab
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], tab
        _shot(page, f"phone-{tab.lower().replace(' ', '-')}", full_page=True)
    page.get_by_role("tab", name="Generate").click()
    panel = page.locator("#panel-generate")
    for control in ("Prompt", "Model", "Width", "Steps", "Count"):
        expect(panel.get_by_label(control, exact=True)).to_be_visible()
    expect(panel.get_by_role("button", name="Generate", exact=True)).to_be_visible()


def test_the_page_asks_no_other_host(page: Page, server: ServerProcess, traffic: Traffic) -> None:
    _open(page, server)
    for tab in ("Edit", "Jobs", "Image utils", "Health", "Generate"):
        page.get_by_role("tab", name=tab).click()
    expect(page.locator("#health-rows tr")).to_have_count(4, timeout=QUICK)
    asked = {urlsplit(url).path for url in traffic.urls if url.startswith(server.url)}
    for path in ("/", "/static/app.js", "/static/easel.js", "/static/style.css"):
        assert path in asked, sorted(asked)
    assert traffic.foreign == []
    assert all(_stays_here(url) for url in traffic.urls), traffic.urls
    # The page names no other host anywhere, even in a link (easel.js's docs use loopback).
    elsewhere = page.evaluate(
        "[...document.querySelectorAll('[src], [href]')]"
        ".map(e => e.src || e.href)"
        ".filter(u => !u.startsWith(location.origin) && !u.startsWith('data:'))"
    )
    assert elsewhere == []


def test_the_client_parses_event_streams_and_carries_error_envelopes(
    page: Page, server: ServerProcess
) -> None:
    _open(page, server)
    script = """async () => {
      const { Easel, EaselError, parseEventStream } = await import("/static/easel.js");
      const text = ": ping\\r\\nid: 1\\r\\nevent: progress\\r\\ndata: {\\"step\\": 1,\\r\\n" +
        "data: \\"total\\": 2}\\r\\n\\r\\nevent: result\\ndata: {}\\n\\n" + "data: lost";
      const bytes = new TextEncoder().encode(text);
      const chunks = [...bytes].map((b) => new Uint8Array([b]));  // one byte at a time
      const body = new ReadableStream({
        pull(c) { chunks.length ? c.enqueue(chunks.shift()) : c.close(); },
      });
      const messages = [];
      for await (const m of parseEventStream(body)) messages.push(m);
      let error = null;
      try {
        await new Easel().generate({ prompt: "x", no_such_field: 1 });
      } catch (e) {
        error = { isEaselError: e instanceof EaselError, code: e.code, status: e.status,
                  message: e.message, details: e.details, requestId: e.requestId };
      }
      return { messages, error };
    }"""
    answer = page.evaluate(script)
    assert answer["messages"] == [
        {"event": "progress", "data": '{"step": 1,\n"total": 2}', "id": "1"},
        {"event": "result", "data": "{}", "id": "1"},
    ]
    error = answer["error"]
    assert error["isEaselError"] and error["code"] == "invalid_input", error
    assert error["status"] == 422 and "no_such_field" in error["message"]
    assert error["details"][0]["field"] == "no_such_field"
    assert len(error["requestId"]) >= 16


def _queue(page: Page) -> str:
    """Click "Queue as job" on the Generate tab; the new job's id."""
    page.get_by_role("tab", name="Generate").click()
    with page.expect_response("**/api/generate/async") as answer:
        page.get_by_role("button", name="Queue as job").click()
    assert answer.value.status == 202, answer.value.text()
    task_id = str(answer.value.json()["task_id"])
    expect(page.locator("#gen-job-note")).to_contain_text(f"Queued job {task_id[:8]}")
    return task_id


@pytest.mark.timeout(300)
def test_jobs_are_listed_open_and_cancel(page: Page, server: ServerProcess) -> None:
    _open(page, server)
    _fill(page, "generate", {"Prompt": "a quick job", "Width": "64", "Height": "64"})
    _fill(page, "generate", {"Steps": "2", "Count": "1"})
    quick = _queue(page)
    page.get_by_role("link", name="See it in Jobs").click()
    expect(page.get_by_role("tab", name="Jobs")).to_have_attribute("aria-selected", "true")
    row = page.locator(f'#job-list li[data-task-id="{quick}"]')
    expect(row).to_have_attribute("data-status", "done", timeout=SLOW)
    expect(row.locator(".facts")).to_contain_text("step 2 / 2")
    row.get_by_role("button", name=f"Open result of job {quick[:8]}").click()
    expect(page.locator("#job-results figure.card")).to_have_count(1, timeout=QUICK)
    expect(page.locator("#job-results")).to_contain_text(quick[:8])

    # Two jobs that could not finish during this test: one runs, one waits behind it.
    page.get_by_role("tab", name="Generate").click()
    _fill(page, "generate", {"Prompt": "a long job", "Width": "128", "Height": "128"})
    _fill(page, "generate", {"Steps": "1000"})
    running, waiting = _queue(page), _queue(page)
    page.get_by_role("tab", name="Jobs").click()
    first = page.locator(f'#job-list li[data-task-id="{running}"]')
    second = page.locator(f'#job-list li[data-task-id="{waiting}"]')
    expect(first.locator(".facts")).to_contain_text("/ 1000", timeout=SLOW)
    expect(first).to_have_attribute("data-status", "running")
    expect(second).to_have_attribute("data-status", "queued")
    expect(second.locator(".facts")).to_contain_text("next in the queue")
    assert page.locator("#job-list li").first.get_attribute("data-task-id") == waiting
    _shot(page, "jobs")

    second.get_by_role("button", name=f"Cancel job {waiting[:8]}").click()
    expect(second).to_have_attribute("data-status", "cancelled", timeout=SLOW)
    first.get_by_role("button", name=f"Cancel job {running[:8]}").click()
    expect(first).to_have_attribute("data-status", "cancelled", timeout=SLOW)
    expect(first.get_by_role("button", name=f"Cancel job {running[:8]}")).to_be_hidden()
    expect(first.get_by_role("button", name=f"Open result of job {running[:8]}")).to_be_hidden()
    for task_id in (running, waiting):
        status = httpx.get(f"{server.url}/api/generate/status/{task_id}", timeout=30).json()
        assert status["status"] == "cancelled", status


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"EASEL_API_KEYS": "user-key", "EASEL_ADMIN_API_KEYS": "admin-key"}
    server = start_server("all", tmp_path, env=env)
    yield server
    server.stop()


def test_a_server_with_keys_gets_its_key_through_the_page(
    browser: Browser, keyed_server: ServerProcess
) -> None:
    traffic = Traffic()
    context = _guarded_context(browser, traffic)
    try:
        page = context.new_page()
        _open(page, keyed_server, "health")
        panel = page.locator("#key-panel")
        expect(panel).to_be_visible(timeout=QUICK)  # a 401 revealed it
        expect(page.locator("#key-note")).to_contain_text("needs an API key")
        expect(page.locator("#health-error")).to_contain_text("HTTP 401")

        page.get_by_label("API key", exact=True).fill("user-key")
        page.get_by_role("button", name="Save key").click()
        # A key without the admin scope: the models load, the services' health says why not.
        expect(page.locator("#gen-model")).to_contain_text("tiny-random", timeout=QUICK)
        expect(page.locator("#health-error")).to_contain_text("admin", timeout=QUICK)

        page.get_by_label("API key", exact=True).fill("admin-key")
        page.get_by_role("button", name="Save key").click()
        expect(page.locator("#health-rows tr")).to_have_count(4, timeout=QUICK)
        expect(page.locator("#health-error")).to_be_hidden()
        _shot(page, "keys")

        page.reload()  # the key was kept in this browser
        expect(page.get_by_label("API key", exact=True)).to_have_value("admin-key", timeout=QUICK)
        expect(page.locator("#health-rows tr")).to_have_count(4, timeout=QUICK)
        assert traffic.foreign == []
    finally:
        context.close()
