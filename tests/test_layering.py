"""The layout holds: each top-level package imports only the layers below it (docs/architecture.md, "The layers").

Read from the source with `ast`, lazy imports inside functions included, so a shortcut taken in
a hurry (a connector reaching into the packager, a stage importing Prefect) fails here with the
file and line, instead of being found by the next engineer who cannot move a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Who may import whom (besides itself and the standard library / third-party packages).
ALLOWED: dict[str, set[str]] = {
    "schemas": set(),
    "guidang_io": {"schemas"},
    "retention": {"schemas"},
    "ledger": {"schemas", "guidang_io"},
    "connectors": {"schemas", "guidang_io"},
    "packager": {"schemas", "guidang_io", "retention"},
    "guidang_demo": {"schemas", "connectors", "retention"},
    "night": {"schemas", "guidang_io", "retention", "ledger", "connectors", "packager"},
    "custody": {"schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "night"},
    "guidang_bench": {"schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "night",
                      "guidang_demo"},
    "flows": {"schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "guidang_demo", "night",
              "custody", "guidang_bench"},
    "scripts": {"schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "guidang_demo",
                "guidang_bench"},
}
OURS = set(ALLOWED) - {"scripts"}
MAX_LINES = 500


def _python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level name) of every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = [
        f"{_where(path, line)} imports {name}"
        for path in _python_files(package)
        for line, name in _imports(path)
        if name in OURS and name != package and name not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package]) or 'nothing of ours'}:\n" + "\n".join(wrong)


def test_nothing_below_flows_imports_prefect() -> None:
    wrong = [
        f"{_where(path, line)} imports prefect"
        for package in sorted(OURS - {"flows"})
        for path in _python_files(package)
        for line, name in _imports(path)
        if name == "prefect"
    ]
    assert not wrong, "stages stay plain functions; only flows/ wraps them in Prefect:\n" + "\n".join(wrong)


def test_the_dependency_table_has_no_cycle() -> None:
    """The allowed edges form a DAG, so no two top-level packages can import each other."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "cycle: " + " -> ".join([*trail, node])
        state[node] = "open"
        for dep in ALLOWED.get(node, set()):
            visit(dep, [*trail, node])
        state[node] = "done"

    for package in ALLOWED:
        visit(package, [])


def test_only_the_demo_command_loads_the_demo_package() -> None:
    users = {
        _where(path, line)
        for package in sorted(OURS - {"guidang_demo"})
        for path in _python_files(package)
        for line, name in _imports(path)
        if name == "guidang_demo"
    }
    assert all(u.startswith(("flows/cli/", "guidang_bench/")) for u in users), users


def test_the_night_never_reaches_the_bureau_or_the_console() -> None:
    """The bureau's side (custody/, its console custody/web/) reads what the night wrote; a night that
    imported it would load the console's web stack into every worker and tie the stages to audit code."""
    wrong = [
        f"{_where(path, line)} imports {name}"
        for path in _python_files("night")
        for line, name in _imports(path)
        if name in {"custody", "flows", "fastapi", "jinja2", "uvicorn"}
    ]
    assert not wrong, "\n".join(wrong)


def test_no_lazy_import_by_name_in_the_product() -> None:
    """`import_module("...")` hides an edge from every reader and from this test."""
    wrong = [
        str(path.relative_to(ROOT))
        for package in sorted(ALLOWED)
        for path in _python_files(package)
        if "import_module(" in path.read_text(encoding="utf-8")
    ]
    assert not wrong, wrong


def test_no_product_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in sorted(ALLOWED)
        for path in _python_files(package)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concern (over {MAX_LINES} lines): {long}"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_edges() -> dict[str, set[str]]:
    """module -> the product modules it imports (at any depth: lazy and TYPE_CHECKING imports too)."""
    files = {_module_of(p): p for package in sorted(OURS) for p in _python_files(package)}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                         for a in node.names]
            else:
                continue
            edges[module].update(n for n in names if n in files and n != module)
    return edges


def test_no_two_product_modules_import_each_other() -> None:
    """No circle of modules, inside a package too (lazy imports count): what two modules both need
    goes into a third that both import."""
    edges, state, circles = _module_edges(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            circles.append(" -> ".join([*trail[trail.index(node):], node]))
            return
        state[node] = "open"
        for dep in sorted(edges[node]):
            visit(dep, [*trail, node])
        state[node] = "done"

    for module in sorted(edges):
        visit(module, [])
    assert not circles, "modules importing each other:\n" + "\n".join(circles)
