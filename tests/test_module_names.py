"""One file name, one module: a reader who hears "transfer.py" or "progress.py" finds one file.

The command line's modules are named after their command groups (`guidang config`, `guidang
deploy`, `guidang web`), and the interfaces of sibling implementations are each a `base.py` beside
them; both are exempt. Every other product module's file name is unique across the product.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "night", "custody", "flows",
           "guidang_demo", "guidang_bench")
EXEMPT_NAMES = {"__init__.py", "__main__.py", "base.py"}
CLI = ROOT / "flows" / "cli"


def product_modules() -> list[Path]:
    return sorted(
        p for package in PRODUCT for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts and "migrations" not in p.relative_to(ROOT).parts
    )


def test_no_two_product_modules_share_a_file_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in product_modules():
        if path.name in EXEMPT_NAMES or path.is_relative_to(CLI):
            continue
        by_name[path.name].append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert not shared, f"rename one of each (a reader cannot tell them apart by name): {shared}"


def test_every_product_package_says_what_it_holds_and_may_import() -> None:
    silent = [
        package for package in PRODUCT
        if len((ROOT / package / "__init__.py").read_text(encoding="utf-8").split('"""')[1].strip()) < 40
        or "import" not in (ROOT / package / "__init__.py").read_text(encoding="utf-8").split('"""')[1].lower()
    ]
    assert not silent, f"the __init__ docstring of these says neither what they hold nor what they may import: {silent}"
