"""What `guidang check PACKAGE` loads: a package without signed PDFs is checked without pyHanko and
without the ledger (the staging rule: pypdf's walk met no signature field or value), and a signed
PDF is still handed to pyHanko when a package is checked again from its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from guidang_demo.pdfs import make_pdf
from packager.checks import check_package
from packager.content import ContentOptions
from packager.signatures import load_trust_roots
from tests.content_support import make_certificate, sign_pdf
from tests.test_content import build_with
from tests.test_packager_support import build, doc

PROBE = """
import json, sys
from flows.cli import app
try:
    app(["check", sys.argv[1], "--json"])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in ("pyhanko", "sqlalchemy", "ledger", "prefect")
                                                 if m in sys.modules)}))
"""


def test_checking_an_unsigned_package_loads_neither_pyhanko_nor_the_ledger(tmp_path: Path) -> None:
    package = build(tmp_path).folder
    out = subprocess.run([sys.executable, "-c", PROBE, str(package)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe == {"code": 0, "loaded": []}, out


def test_a_signed_pdf_is_still_validated_when_its_package_is_checked_again(tmp_path: Path) -> None:
    cert, key, pem = make_certificate()
    data = sign_pdf(make_pdf(["准予行政许可决定书"]), cert, key)
    (tmp_path / "root.pem").write_bytes(pem)
    options = ContentOptions(trust_roots=load_trust_roots((str(tmp_path / "root.pem"),)))
    pkg = build_with(tmp_path, [doc("结果材料", "决定书.pdf", data)], options)

    again = check_package(pkg.folder, content=options)  # from the folder: nothing known from staging
    item = again.item("GD-1-6")
    assert item.status == "pass" and "1 有效" in (item.detail or ""), item
