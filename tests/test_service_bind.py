"""`easel serve <service>` off loopback without EASEL_INTERNAL_TOKEN: refused at start-up
unless EASEL_ALLOW_UNAUTHENTICATED=true, which serves and warns. Real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import START_TIMEOUT, base_env, free_port

WILDCARD = "0.0.0.0"  # noqa: S104 (the bind under test)


def serve(tmp_path: Path, env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "easel", "serve", "image-utils", "--host", WILDCARD]
        + ["--port", str(port)],
        cwd=tmp_path,
        env=base_env(tmp_path, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_service_off_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    process = serve(tmp_path, {}, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith("easel: image-utils would serve on 0.0.0.0")
    assert "EASEL_INTERNAL_TOKEN" in lines[0] and "EASEL_ALLOW_UNAUTHENTICATED" in lines[0]


def test_allowed_explicitly_it_serves_and_warns(tmp_path: Path) -> None:
    port = free_port()
    env = {"EASEL_ALLOW_UNAUTHENTICATED": "true", "EASEL_LOG_LEVEL": "INFO"}
    process = serve(tmp_path, env, port)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "image-utils did not start"
            time.sleep(0.05)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "image-utils serves on 0.0.0.0 without EASEL_INTERNAL_TOKEN" in output, output
