"""Publishing cannot bypass the egress gate: only slidegate/egress/gate.py writes to a Store.

Checked on the source (AST) of slidegate/, tasks/ and flows/: a call of `.put_file(`,
`.put_bytes(` or `copy_object(` anywhere else fails, and boto3's write calls (put_object,
upload_*, copy_object, multipart parts) appear only inside the S3 Store implementation.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("slidegate", "tasks", "flows")
GATE = "slidegate/egress/gate.py"
STORE_WRITES = {"put_file", "put_bytes", "copy_object"}
S3_WRITES = {
    "put_object",
    "upload_file",
    "upload_fileobj",
    "copy_object",
    "create_multipart_upload",
    "upload_part",
    "upload_part_copy",
    "complete_multipart_upload",
}
#: (module, enclosing function) allowed to write without the gate, and why
EXCEPTIONS = {
    # the write probe: a constant, unlocked, deleted right away (before any slide work)
    ("slidegate/publish/stores.py", "check_writable"),
    # the S3 copy itself: called only by Gate.copy_staged (checked below)
    ("slidegate/publish/s3.py", "copy_object"),
}
S3_IMPLEMENTATION = "slidegate/publish/s3.py"


def write_calls(path: Path) -> list[tuple[str, str, int]]:
    """(called name, enclosing function, line) of every Store/S3 write call in `path`."""
    out: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = func
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
            if isinstance(child, ast.Call):
                f = child.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if called in STORE_WRITES | S3_WRITES:
                    out.append((called, func, child.lineno))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return out


def _files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))]
    assert files
    return files


def test_only_the_gate_writes_to_a_store() -> None:
    violations = []
    for path in _files():
        rel = path.relative_to(REPO).as_posix()
        if rel == GATE:
            continue
        for called, func, line in write_calls(path):
            if (rel, func) in EXCEPTIONS:
                continue
            if rel == S3_IMPLEMENTATION and called in S3_WRITES and called not in STORE_WRITES:
                continue  # boto3 calls inside the S3 Store's own put methods
            violations.append(f"{rel}:{line} calls {called}() in {func or 'module'}")
    assert violations == []


def test_the_s3_copy_is_called_only_by_the_gate() -> None:
    callers = [
        path.relative_to(REPO).as_posix()
        for path in _files()
        if any(c == "copy_object" and f != "copy_object" for c, f, _ in write_calls(path))
    ]
    assert callers == [GATE]


def test_checker_catches_a_bypass(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "def publish(store, gate):\n"
        "    store.put_file('r/a', p, h)\n"
        "    gate.store.put_bytes('r/b', b'x', h)\n"
        "    copy_object(src, 'k', dst, 'r/c')\n"
        "    client.upload_fileobj(fh, 'b', 'k')\n"
    )
    assert [c for c, _, _ in write_calls(sample)] == [
        "put_file",
        "put_bytes",
        "copy_object",
        "upload_fileobj",
    ]
