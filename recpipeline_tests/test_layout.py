"""The package layout's rules: the domain core never imports Dagster, and stages import only earlier ones
(the exceptions are named here, each with its reason)."""

from __future__ import annotations

import ast
from pathlib import Path

import recpipeline

PACKAGE = Path(recpipeline.__file__).parent
#: stages in asset-graph order; a module may import its own stage or an earlier one
STAGES = (
    "contracts",
    "datasets",  # the public datasets' registry and location: configurations name them
    "config",
    "sources",
    "preparation",
    "models",
    "scoring",  # the metric engine: relevance and ranking metrics, shared by validation and evaluation
    "fitting",
    "evaluation",
    "orchestration",
    "bench",
    "cli",
)
DOMAIN = (
    "contracts",
    "datasets",
    "config",
    "sources",
    "preparation",
    "models",
    "scoring",
    "fitting",
    "evaluation",
)
#: later-stage modules an earlier stage may import, because they import nothing back (none today)
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.append((parts[0], node.module, str(path.relative_to(PACKAGE))))
            elif isinstance(node, ast.Import):
                found += [(parts[0], alias.name, str(path.relative_to(PACKAGE))) for alias in node.names]
    return found


def test_the_domain_core_never_imports_dagster():
    offending = [
        where for stage, module, where in _imports() if stage in DOMAIN and module.startswith("dagster")
    ]
    assert offending == []


def test_stages_import_only_earlier_stages():
    offending = []
    for stage, module, where in _imports():
        parts = module.split(".")
        if parts[0] != "recpipeline" or len(parts) < 2 or parts[1] not in STAGES:
            continue
        if STAGES.index(parts[1]) > STAGES.index(stage) and (stage, module) not in ALLOWED_UPWARD:
            offending.append(f"{where} imports {module}")
    assert offending == []


def test_allowed_upward_imports_import_nothing_back():
    for stage, module in ALLOWED_UPWARD:
        path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
        imported = [
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        ]
        assert not [m for m in imported if m.startswith(f"recpipeline.{stage}")], module


def test_models_hold_only_models_and_what_they_share():
    # fitting, validation scoring and serving live in later stages; a fit is handed its scorer
    offending = [
        f"{where} imports {module}"
        for stage, module, where in _imports()
        if stage == "models"
        and module.startswith("recpipeline.")
        and module.split(".")[1] not in ("models", "contracts")
    ]
    assert offending == []
