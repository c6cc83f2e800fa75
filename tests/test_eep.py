"""DA/T 48 EEP export of an archived matter: a real package stored in a filesystem repository with its
ledger row, exported through `guidang export eep`, validated against schemas/eep.xsd, and every
document decoded back to its original bytes. A stored document changed after archiving makes the
export fail with nothing left behind; each mandatory element of the XSD is really mandatory."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from lxml import etree
from typer.testing import CliRunner

from connectors.repositories import FilesystemRepository
from flows.cli import app
from ledger import store
from ledger.models import MatterRecord, MatterState
from packager.eep import (
    ENCODE_PIECE,
    EepError,
    export_eep_from_folder,
    validate_eep,
    validate_eep_tree,
    write_eep,
)
from packager.package import PackageResult
from schemas.layout import COMPLETION_MARKER, METADATA_FILE, package_key
from tests.test_packager_support import ARCHIVED_AT, FONDS, build, doc, good_documents, sha256

runner = CliRunner()


@dataclass(frozen=True)
class Archived:
    config: Path
    archival_code: str
    repo_root: Path
    key: str
    package: PackageResult

    def stored(self, rel: str) -> Path:
        return self.repo_root / self.key / rel


def archive(tmp_path: Path, result: PackageResult, *, marker: bool = True) -> Archived:
    """Store a finished package in an fs repository under its package_key and record it in a ledger,
    as the nightly transfer does, and write the guidang.yaml that names both."""
    root = tmp_path / "world"
    root.mkdir()
    repo = FilesystemRepository(root / "archive", create=True)
    code = result.report.archival_code
    assert code
    key = package_key(FONDS.code, 2026, "D30", code)
    for f in result.files:
        repo.put_file(f"{key}/{f.path}", result.folder / f.path, f.sha256)
    if marker:
        repo.put_bytes(f"{key}/{COMPLETION_MARKER}", json.dumps({"archival_code": code}).encode())
    with store.Ledger(f"sqlite:///{root / 'ledger.sqlite'}") as ledger, ledger.transaction() as s:
        rec = MatterRecord(
            source="unified", project_id="330106260210000123", version=1, content_hash="0" * 64,
            state=MatterState.VERIFIED, service_code="330106-XK-0001", service_name="食品经营许可",
            matter_type="01", agency="西湖区市场监督管理局", title="食品经营许可",
            completed_at=datetime(2026, 2, 10, 8, 30, tzinfo=UTC),
            source_updated_at=datetime(2026, 2, 10, 8, 31, tzinfo=UTC),
            fonds=FONDS.code, year=2026, retention_period="D30", category_code="WS", org_code="SJ",
            item_number=1, archival_code=code, package_key=key, record={}, appraisal={},
        )
        store.record_numbered(s, rec, run_id=None)
    config = {
        "fonds": [{"code": FONDS.code, "name": FONDS.name}],
        "ledger_url": "sqlite:///ledger.sqlite",
        "repository": {"kind": "fs", "path": "archive"},
        "sources": [{"name": "unified", "kind": "unified", "base_url": "http://127.0.0.1:9"}],
    }
    path = root / "guidang.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return Archived(path, code, root / "archive", key, result)


def tamper(path: Path) -> None:
    """Change one byte of a stored (read-only) file, keeping its size."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def decoded(tree: etree._ElementTree) -> dict[str, bytes]:
    return {
        e.findtext("相对路径"): base64.b64decode(e.findtext("文件数据/文档/文档数据/编码/编码数据"))
        for e in tree.getroot().iterfind("被签名对象/封装内容/文件实体块/文件实体")
    }


def huge_parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True))


@pytest.fixture
def archived(tmp_path: Path) -> Archived:
    return archive(tmp_path, build(tmp_path))


def test_export_round_trip(archived: Archived, tmp_path: Path) -> None:
    out = tmp_path / "out" / "eep.xml"
    out.parent.mkdir()
    r = runner.invoke(app, ["export", "eep", archived.archival_code, str(out), "--config", str(archived.config)])
    assert r.exit_code == 0, r.output
    assert "valid against eep.xsd" in r.output
    assert not out.with_name("eep.xml.part").exists()
    assert validate_eep(out) == []
    tree = huge_parse(out)
    root = tree.getroot()
    assert root.tag == "电子文件封装包"
    assert root.findtext("被签名对象/封装包类型") == "原始型"
    assert root.findtext("被签名对象/封装包创建单位") == FONDS.name
    enc = root.find("被签名对象/封装内容/文件实体块/文件实体/文件数据/文档/文档数据/编码")
    assert enc.findtext("反编码关键字") == "base64"
    assert "Base64" in enc.findtext("编码描述")
    # every document decodes to the bytes the package holds, and nothing else is encoded
    docs = {f.path for f in archived.package.files if "/" in f.path}
    got = decoded(tree)
    assert set(got) == docs and len(docs) == 4
    for rel, data in got.items():
        assert data == (archived.package.folder / rel).read_bytes(), rel
    # 元数据.xml is embedded as its root element, unchanged in content
    embedded = root.find("被签名对象/封装内容/元数据")
    original = etree.parse(str(archived.package.folder / METADATA_FILE)).getroot()
    assert etree.tostring(embedded, method="c14n") == etree.tostring(original, method="c14n")
    assert root.find("电子签名块") is None


def test_export_json_summary(archived: Archived, tmp_path: Path) -> None:
    out = tmp_path / "e.xml"
    r = runner.invoke(app, ["export", "eep", archived.archival_code, str(out), "-c", str(archived.config), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["validated"] is True and summary["documents"] == 4
    assert summary["content_bytes"] == sum(f.size for f in archived.package.files if "/" in f.path)
    assert summary["size"] == out.stat().st_size


def test_tampered_stored_document_fails_and_leaves_nothing(archived: Archived, tmp_path: Path) -> None:
    rel = "过程材料/现场核查记录.pdf"
    tamper(archived.stored(rel))
    out = tmp_path / "eep.xml"
    r = runner.invoke(app, ["export", "eep", archived.archival_code, str(out), "--config", str(archived.config)])
    assert r.exit_code == 1
    assert "EEP-DIGEST-MISMATCH" in r.output and rel in r.output
    assert not out.exists()
    assert list(tmp_path.glob("eep.xml*")) == []


def test_tampered_metadata_fails(archived: Archived, tmp_path: Path) -> None:
    tamper(archived.stored(METADATA_FILE))
    out = tmp_path / "eep.xml"
    with pytest.raises(EepError) as exc:
        from packager.eep import export_eep_from_repository

        export_eep_from_repository(FilesystemRepository(archived.repo_root), archived.key, out,
                                   creator="x", created_at=ARCHIVED_AT)
    assert exc.value.findings[0].code == "EEP-DIGEST-MISMATCH"
    assert not out.exists() and not out.with_name("eep.xml.part").exists()


def test_unknown_archival_code_exits_2(archived: Archived, tmp_path: Path) -> None:
    r = runner.invoke(app, ["export", "eep", "Z109-WS·2026·D30·SJ-9999", str(tmp_path / "x.xml"),
                            "--config", str(archived.config)])
    assert r.exit_code == 2
    assert "not in the ledger" in r.output
    assert not (tmp_path / "x.xml").exists()


def test_missing_stored_document_fails(archived: Archived, tmp_path: Path) -> None:
    path = archived.stored("结果材料/准予许可决定书.pdf")
    path.unlink()
    out = tmp_path / "eep.xml"
    r = runner.invoke(app, ["export", "eep", archived.archival_code, str(out), "--config", str(archived.config)])
    assert r.exit_code == 1
    assert "REPO-NO-SUCH-KEY" in r.output
    assert not out.exists() and not out.with_name("eep.xml.part").exists()


def test_base64_pieces_and_lines(tmp_path: Path) -> None:
    """A document larger than one encoding piece, read in blocks that are not multiples of 3, decodes
    exactly and is written as RFC 2045 lines of 76 characters."""
    big = bytes(range(256)) * ((ENCODE_PIECE * 2 + 1000) // 256) + b"tail!"
    attachment = doc("申报材料", "附件.bin", big, title="附件", media_type="application/octet-stream")
    documents = [*good_documents(), attachment]
    result = build(tmp_path, documents, check_warnings=["GD-3-2", "GD-3-3", "GD-1-3"])
    files = {f.path: f for f in result.files}
    assert files["申报材料/附件.bin"].sha256 == sha256(big)

    def reader(rel: str):
        data = (result.folder / rel).read_bytes()
        for i in range(0, len(data), 1000):  # 1000 is not a multiple of 3
            yield data[i:i + 1000]

    out = tmp_path / "big.xml"
    res = write_eep(reader, out, creator="西湖区", created_at=ARCHIVED_AT)
    assert res.documents == 5
    tree = huge_parse(out)
    assert decoded(tree)["申报材料/附件.bin"] == big
    text = next(e.findtext("文件数据/文档/文档数据/编码/编码数据")
                for e in tree.getroot().iterfind(".//文件实体") if e.findtext("相对路径") == "申报材料/附件.bin")
    lines = text.strip().split("\n")
    assert {len(line) for line in lines[:-1]} == {76}
    assert validate_eep_tree(tree) == []


# -- the XSD: what DA/T 48 makes mandatory is mandatory ------------------------------------------

MANDATORY = [
    "封装包格式描述",
    "版本",
    "被签名对象",
    "被签名对象/封装包类型",
    "被签名对象/封装包类型描述",
    "被签名对象/封装包创建时间",
    "被签名对象/封装包创建单位",
    "被签名对象/封装内容",
    "被签名对象/封装内容/文件实体块",
    "被签名对象/封装内容/元数据",
    ".//文件实体/聚合层次",
    ".//文件实体/档号",
    ".//文件实体/题名",
    ".//文件实体/相对路径",
    ".//文件实体/文件数据",
    ".//文件数据/文档",
    ".//文档/文档标识符",
    ".//文档/文档序号",
    ".//文档/文档数据",
    ".//文档数据/编码",
    ".//编码/电子属性",
    ".//电子属性/计算机文件名",
    ".//编码/编码描述",
    ".//编码/反编码关键字",
    ".//编码/编码数据",
    "被签名对象/封装内容/元数据/档号",  # metadata.xsd is in force inside the EEP too
]


@pytest.fixture(scope="module")
def good_tree(tmp_path_factory: pytest.TempPathFactory) -> etree._ElementTree:
    tmp = tmp_path_factory.mktemp("eep")
    result = build(tmp)
    out = tmp / "eep.xml"
    export_eep_from_folder(result.folder, out, creator=FONDS.name, created_at=ARCHIVED_AT)
    return huge_parse(out)


def test_good_tree_is_valid(good_tree: etree._ElementTree) -> None:
    assert validate_eep_tree(good_tree) == []


@pytest.mark.parametrize("path", MANDATORY)
def test_removing_a_mandatory_element_fails(good_tree: etree._ElementTree, path: str) -> None:
    tree = copy.deepcopy(good_tree)
    targets = tree.getroot().findall(path)
    assert targets, path
    for el in targets:
        el.getparent().remove(el)
    problems = validate_eep_tree(tree)
    assert problems, path
    assert all(p.code == "EEP-INVALID" for p in problems)


@pytest.mark.parametrize(("path", "value"), [
    ("被签名对象/封装包类型", "派生型"),
    ("被签名对象/封装包创建时间", "yesterday"),
    ("版本", "v1"),
    (".//编码/编码数据", "not base64 !"),
])
def test_wrong_values_fail(good_tree: etree._ElementTree, path: str, value: str) -> None:
    tree = copy.deepcopy(good_tree)
    tree.getroot().find(path).text = value
    assert validate_eep_tree(tree)


def test_signature_block_is_optional_but_checked(good_tree: etree._ElementTree) -> None:
    tree = copy.deepcopy(good_tree)
    block = etree.SubElement(tree.getroot(), "电子签名块")
    sig = etree.SubElement(block, "电子签名")
    for name, text in [("签名标识符", "S1"), ("签名规则", "全部被签名对象"), ("签名时间", "2026-03-02T02:00:00+08:00"),
                       ("签名人", "西湖区档案馆"), ("签名结果", base64.b64encode(b"sig").decode())]:
        etree.SubElement(sig, name).text = text
    assert validate_eep_tree(tree) == []
    sig.remove(sig.find("签名人"))
    assert validate_eep_tree(tree)


def test_export_memory_does_not_grow_with_the_document() -> None:
    """A 40 MiB document exported from an fs repository in a child process: the peak RSS stays near the
    interpreter's baseline (a buffered xmlfile that kept the Base64 would add ~2.6x the document)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "measure_eep_rss.py"
    spec = importlib.util.spec_from_file_location("measure_eep_rss", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    m = module.measure(40)
    assert m["eep_mib"] > 40 * 4 / 3
    assert m["peak_rss_mib"] - m["baseline_rss_mib"] < 60, m
