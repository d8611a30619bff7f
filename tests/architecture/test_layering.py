"""Arrows point one way: flows -> tasks -> slidegate. Checked on the source (AST), so a lazy
import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "slidegate": {"prefect", "prefect_dask", "distributed", "flows", "tasks"},
    "tasks": {"flows"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_layers_import_only_downwards() -> None:
    violations = []
    for package, forbidden in FORBIDDEN.items():
        files = sorted((REPO / package).rglob("*.py"))
        assert files, f"no Python files found in {package}/"
        for path in files:
            bad = imported_roots(path) & forbidden
            if bad:
                violations.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert violations == []


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    from prefect import flow\n    import distributed.client\n")
    assert imported_roots(sample) >= {"prefect", "distributed"}


def reads_environment(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "getenv", "environb"}
        ):
            return True
    return False


def test_core_never_reads_environment(tmp_path: Path) -> None:
    sample = tmp_path / "env.py"
    sample.write_text("import os\nX = os.environ.get('A')\n")
    assert reads_environment(sample)
    offenders = [
        str(p.relative_to(REPO))
        for p in sorted((REPO / "slidegate").rglob("*.py"))
        if reads_environment(p)
    ]
    assert offenders == []
