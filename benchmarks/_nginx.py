"""nginx as a reference reverse proxy for gateway_overhead.py: what a hop costs when it is
done in C, measured in the same run as easel's.

Debian's package (`apt-get install nginx`) is used where it is installed; nothing is
installed here. The script starts it itself: its own config in the run's temp dir, a free
port, the current user, in the foreground (`daemon off`), one process (`master_process
off`), so that stopping it and reading its CPU time from /proc are the same as for the easel
servers. The system's nginx config and service are never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.servers import START_TIMEOUT, ServerProcess, free_port

# Debian installs nginx in /usr/sbin, which a non-root PATH may not hold.
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

# A reverse proxy as it is deployed in front of an HTTP/1.1 service: keep-alive upstream
# connections, bodies passed on as they come (no buffering to disk), no access log (the
# easel gateway's access log is off in the benchmark too: EASEL_LOG_LEVEL=WARNING).
_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 100m;
    keepalive_requests 1000000;
    upstream service {{
        server {upstream};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None where it is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in _CANDIDATES if Path(path).is_file()), None)


def start_nginx(binary: str, upstream_url: str, tmp: Path) -> ServerProcess:
    """nginx proxying every path to `upstream_url`; returns once /api/health answers
    through it."""
    home = tmp / "nginx"
    home.mkdir(exist_ok=True)
    port = free_port()
    config = home / "nginx.conf"
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    config.write_text(_CONFIG.format(tmp=home, port=port, upstream=upstream))
    log_path = home / "nginx.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [binary, "-p", str(home), "-c", str(config), "-e", str(home / "nginx-error.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess("nginx", port, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = (home / "nginx-error.log").read_text(errors="replace")
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{errors}")
        try:
            if httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"nginx did not answer in {START_TIMEOUT}s")
