"""The API's layering rule (docs/architecture.md, rule 4): a route module never imports another route module,
and services never import routes. Shared route types live in ``api/deps.py`` and ``api/errors.py``; shared
orchestration in ``api/services/``. The console follows the same rule as the JSON API."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, with ``from a import b`` as ``a`` and ``a.b``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _route_modules() -> set[str]:
    return {f"api.routes.{p.stem}" for p in (REPO / "api" / "routes").glob("*.py") if p.stem != "__init__"}


def test_no_route_module_imports_another() -> None:
    routes = _route_modules()
    offenders = []
    for path in sorted((REPO / "api" / "routes").glob("*.py")):
        own = f"api.routes.{path.stem}"
        for module in sorted(_imported_modules(path) & routes - {own}):
            offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, ("move what they share into api/deps.py, api/errors.py or api/services/: "
                           + "; ".join(offenders))


def test_services_and_storage_never_import_routes() -> None:
    offenders = []
    for folder in ("api/services", "core/storage"):
        for path in sorted((REPO / folder).glob("*.py")):
            bad = sorted(m for m in _imported_modules(path) if m == "api.routes" or m.startswith("api.routes."))
            offenders += [f"{path.relative_to(REPO)} imports {m}" for m in bad]
    assert not offenders, "services call storage and Temporal, never routes: " + "; ".join(offenders)


def test_the_rule_sees_the_console() -> None:
    """The check is not vacuous: it reads the console's route module and the services it calls."""
    assert "api.routes.console" in _route_modules()
    imported = _imported_modules(REPO / "api" / "services" / "console.py")
    assert {"api.services.reviews", "api.services.appeals", "core.storage.console"} <= imported
