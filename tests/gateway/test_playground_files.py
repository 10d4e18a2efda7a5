"""The playground's files without a browser: each is served with a type a browser accepts
(module scripts need a JavaScript type), none names another host, and the modules' imports
and the page's references all resolve to files that exist (no build step to catch them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from easel.gateway import playground
from tests.gateway.keys_support import clear_easel_env, gateway_client, settings_for

FOLDER = Path(playground.__file__).parent
STATIC = FOLDER / "static"
PAGE_FILES = sorted(path for path in FOLDER.rglob("*") if path.suffix in (".html", ".js", ".css"))
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
URL = re.compile(r"\b(?:https?|wss?)://([^/\s\"'`)]+)", re.IGNORECASE)
IMPORT = re.compile(r"""(?:^|\s)(?:import|export)\b[^;]*?\bfrom\s+["'](\.[^"']+)["']""", re.M)
REFERENCE = re.compile(r"""\b(?:src|href)="([^"]+)\"""")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


async def test_every_file_is_served_with_its_type(tmp_path: Path) -> None:
    async with gateway_client(settings_for(tmp_path)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'src="static/app.js"' in page.text
        for path in sorted(STATIC.rglob("*")):
            if not path.is_file():
                continue
            answer = await client.get(f"/static/{path.relative_to(STATIC).as_posix()}")
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith(TYPES[path.suffix]), path


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_no_file_names_another_host(path: Path) -> None:
    # Only documentation examples name a server at all, and only this machine's.
    hosts = {match.split(":")[0].lower() for match in URL.findall(path.read_text())}
    assert hosts <= {"127.0.0.1", "localhost"}, (path.name, hosts)


def test_every_import_and_reference_resolves() -> None:
    modules = sorted(STATIC.glob("*.js"))
    reached = set()
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            imported = (module.parent / target).resolve()
            assert imported.is_file(), (module.name, target)
            reached.add(imported)
    index = (FOLDER / "index.html").read_text()
    for reference in REFERENCE.findall(index):
        if reference.startswith(("#", "data:", "docs")):
            continue
        assert (FOLDER / reference).is_file(), reference
        reached.add((FOLDER / reference).resolve())
    # Every module is used: by the page (app.js and what it imports) or, easel.js, by both.
    assert {module.resolve() for module in modules} <= reached
