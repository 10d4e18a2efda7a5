"""The folders are the architecture: services meet only through HTTP and the shared core.

Every import in `easel/` (lazy ones inside functions included) is read with `ast`:
- a service package imports only itself and `easel.core`;
- `easel.core` imports no service, nor the composition;
- `easel.pod` reaches services only through the composition's table (`easel.compose`);
- only `easel.compose` and the command line (`easel.cli`) import several services.
"""

from __future__ import annotations

import ast
from pathlib import Path

EASEL = Path(__file__).resolve().parents[1] / "easel"
SERVICE_PACKAGES = {"gateway", "generation", "segmentation", "image_utils", "jobs"}
# What each kind of package may import, besides itself and the top `easel` module.
ALLOWED = {
    **{service: {"core"} for service in SERVICE_PACKAGES},
    "core": set(),
    "pod": {"core", "compose"},
    "compose": {"core", "pod", *SERVICE_PACKAGES},
    "cli": {"core", "pod", "compose", "client"},
    "client": {"core"},
}


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of the modules `source` (module `module`) imports."""
    found: set[str] = set()
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                base = package[: len(package) - node.level]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def top_package(module: str) -> str | None:
    """`easel.jobs.store.redis` -> `jobs`; `easel` itself -> None; not easel -> None."""
    parts = module.split(".")
    if parts[0] != "easel" or len(parts) == 1:
        return None
    return parts[1].removesuffix(".py")


def violations(source: str, module: str) -> list[str]:
    own = top_package(module)
    assert own is not None
    allowed = ALLOWED.get(own, set(ALLOWED))  # a new top-level package must be classified
    problems = []
    for imported in sorted(imported_modules(source, module)):
        target = top_package(imported)
        if target is not None and target != own and target not in allowed:
            problems.append(f"{module} imports {imported}")
    return problems


def module_name(path: Path) -> str:
    relative = path.relative_to(EASEL.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_package_imports_across_the_architecture() -> None:
    problems = []
    modules = sorted(EASEL.rglob("*.py"))
    assert len(modules) > 50
    for path in modules:
        module = module_name(path)
        if module in ("easel", "easel.__main__"):
            continue
        problems += violations(path.read_text(), module)
    assert not problems, "\n".join(problems)


def test_every_top_level_package_is_classified() -> None:
    packages = {p.name.removesuffix(".py") for p in EASEL.iterdir() if not p.name.startswith("_")}
    packages.discard("__pycache__")
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


def test_the_check_catches_a_service_importing_another() -> None:
    lazy = "def f():\n    from easel.generation.app import create_app\n"
    assert violations(lazy, "easel.jobs.app") == ["easel.jobs.app imports easel.generation.app"]
    assert violations("import easel.jobs.models\n", "easel.core.events") == [
        "easel.core.events imports easel.jobs.models"
    ]
    assert violations("from ..segmentation import x\n", "easel.gateway.app") == [
        "easel.gateway.app imports easel.segmentation"
    ]
    assert violations("from easel.gateway.app import create_app\n", "easel.pod.plan") == [
        "easel.pod.plan imports easel.gateway.app"
    ]


def test_the_check_lets_a_service_use_itself_and_the_core() -> None:
    source = "from easel.core.errors import NotFound\nfrom . import models\nimport easel\n"
    assert violations(source, "easel.jobs.manager") == []
    assert violations("from easel.jobs.app import create_app\n", "easel.compose.apps") == []
