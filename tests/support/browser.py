"""Debian's Chromium driven by Playwright (whose own browser download cannot work here):
found on the PATH (`make test` installs it), or the test fails saying how to get it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail(
            "this test needs Chromium: `apt-get install chromium` (make test installs it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--no-proxy-server"]
        )
        try:
            yield browser
        finally:
            browser.close()
