"""The import arrows of the house (README "Layout"), read from the source with `ast`.

- The web and the settings (`arbsite/`, `signals_app/`) import nothing from the workers: the
  web reads what the engine and the ingestor computed from Redis and their /health.
- The engine imports nothing from the ingestor; its management commands are the composition
  roots that hand it the venue registry's facts (default fees, parsers for replay).
- The contracts (`signals_app/contracts/`) import only each other.
- The pure engine (book, spread, lifecycle, rates, engine, config) imports no Django.

Tests are composition too and are not held to these rules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PURE_ENGINE = ("book", "config", "engine", "lifecycle", "rates", "spread")


def imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module or "")
    return names


def sources(*folders: str, skip: tuple[str, ...] = ()) -> list[Path]:
    found = [
        path
        for folder in folders
        for path in sorted((REPO / folder).rglob("*.py"))
        if "tests" not in path.relative_to(REPO).parts
    ]
    return [path for path in found if not any(path.relative_to(REPO).as_posix().startswith(s) for s in skip)]


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO)} imports {name}"
        for path in paths
        for name in sorted(imported(path))
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    ]


def test_the_rules_see_real_imports() -> None:
    # A rule that reads nothing passes for nothing: the reader must find what is there.
    assert "ingest_worker.venues" in imported(REPO / "engine_worker/management/commands/run_engine.py")
    assert "signals_app.contracts.tick" in imported(REPO / "engine_worker/engine.py")
    assert len(sources("signals_app")) > 10


@pytest.mark.parametrize("folder", ["arbsite", "signals_app"])
def test_the_web_and_the_settings_import_no_worker(folder: str) -> None:
    assert offending(sources(folder), ("engine_worker", "ingest_worker")) == []


def test_the_engine_imports_nothing_from_the_ingestor() -> None:
    paths = sources("engine_worker", skip=("engine_worker/management/commands/",))
    assert offending(paths, ("ingest_worker",)) == []


def test_the_contracts_import_only_each_other() -> None:
    assert offending(sources("signals_app/contracts"), ("engine_worker", "ingest_worker", "arbsite", "django")) == []
    own = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sources("signals_app/contracts")
        for name in sorted(imported(path))
        if name.startswith("signals_app.") and not name.startswith("signals_app.contracts")
    ]
    assert own == []


def test_the_pure_engine_imports_no_django() -> None:
    paths = [REPO / "engine_worker" / f"{name}.py" for name in PURE_ENGINE]
    assert offending(paths, ("django", "arbsite")) == []
