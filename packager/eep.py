"""DA/T 48-2009 电子文件封装包 (EEP, 原始型) of one archived package: one XML, content in Base64.

An EEP is an export for archives that exchange self-contained XML files; the package in the
repository stays the record. The writer streams: each document is read in blocks from wherever the
package lives (a folder or the archive repository), hashed and Base64-encoded in pieces whose size is
a multiple of 57 bytes (3 for Base64 without padding inside the text, 57 for RFC 2045's 76-character
lines), and written through lxml's incremental `xmlfile`, so a matter of any size never sits in
memory. Every document's SHA-256 is compared with the package's manifest-sha256.txt as it streams;
a mismatch removes the partial output, so an EEP on disk always carries exactly the archived bytes.
The output is written to `<name>.part` and renamed at the end.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from lxml import etree

from schemas.digest import iter_file
from schemas.findings import Finding, GuidangError
from schemas.layout import MANIFEST_SHA256, METADATA_FILE
from schemas.manifest import read_manifest
from schemas.metadata import MetadataDocument, MetadataView, read_metadata
from schemas.model import mask_text
from schemas.xmlio import parse_xml

EEP_XSD = "eep.xsd"
EEP_VERSION = "2009"
EEP_TYPE = "原始型"
EEP_FORMAT_DESCRIPTION = (
    "本EEP根据中华人民共和国档案行业标准DA/T 48-2009《基于XML的电子文件封装规范》生成"
)
EEP_TYPE_DESCRIPTION = "本封装包包含电子文件数据及其元数据，系原始封装，未经修改"
ENCODING_DESCRIPTION = (
    "本封装包中“编码数据”元素存储的是计算机文件二进制流的Base64编码，有关Base64编码规则参见"
    "IETF RFC 2045多用途邮件扩展（MIME）第一部分：互联网信息体格式。当提取和显现封装在编码数据"
    "元素中的计算机文件时，应对Base64编码进行反编码，并依据“计算机文件名”还原计算机文件"
)
DECODE_KEYWORD = "base64"
# 57 input bytes make one 76-character Base64 line; 16384 lines = 912 KiB read per piece.
ENCODE_PIECE = 57 * 16384
# Validating needs the whole tree in memory (a Base64 text node is one string), so the CLI only
# validates exports below this size and says so above it.
VALIDATE_LIMIT_BYTES = 100 * 1024 * 1024


Reader = Callable[[str], Iterable[bytes]]


class ObjectSource(Protocol):
    """What the EEP writer needs of an archive repository (connectors.repositories.Repository has it;
    packager/ does not import connectors/)."""

    def open(self, key: str) -> Iterable[bytes]: ...


class EepError(GuidangError):
    """The EEP cannot be written: the package is incomplete or its content does not match its manifest."""


@dataclass(frozen=True, slots=True)
class EepResult:
    path: Path
    archival_code: str
    documents: int
    content_bytes: int  # bytes of the documents before encoding
    size: int  # bytes of the EEP file


def _error(code: str, where: str, message: str, **details: object) -> EepError:
    finding = Finding(code, where, message, details=dict(details))
    return EepError(str(finding), [finding])


def folder_reader(folder: Path) -> Reader:
    """Read package files from a package folder, in blocks."""

    def read(rel: str) -> Iterator[bytes]:
        path = folder / rel
        if not path.is_file():
            raise _error("EEP-PACKAGE-INCOMPLETE", rel, f"not in package folder {folder}")
        with path.open("rb") as fh:
            yield from iter_file(fh)

    return read


def repository_reader(repository: ObjectSource, package_key: str) -> Reader:
    """Read package files from the archive repository (`Repository.open`) under `package_key`."""

    def read(rel: str) -> Iterable[bytes]:
        return repository.open(f"{package_key}/{rel}")

    return read


def parse_manifest(text: str, where: str = MANIFEST_SHA256) -> dict[str, str]:
    """`{relative path: sha256}` from manifest-sha256.txt; any malformed or dangerous line is an error."""
    manifest = read_manifest(text.split("\n"))
    if manifest.problems:
        p = manifest.problems[0]
        raise _error("EEP-MANIFEST-INVALID", f"{where}:{p.line}", f"not a valid manifest line: {p.text!r}")
    if not manifest.entries:
        raise _error("EEP-MANIFEST-INVALID", where, "empty manifest")
    return manifest.entries


def _read_small(read: Reader, rel: str) -> bytes:
    return b"".join(read(rel))


def _mismatch(rel: str, expected: str, found: str, size: int) -> EepError:
    return _error("EEP-DIGEST-MISMATCH", rel, "SHA-256 differs from manifest-sha256.txt; the stored file is not "
                  "what was archived", expected=expected, found=found, size=size)


def _leaf(xf: Any, name: str, text: str) -> None:
    el = etree.Element(name)
    el.text = text
    xf.write(el)


def _encode(xf: Any, rel: str, chunks: Iterable[bytes], expected: str) -> int:
    """Write `chunks` as Base64 text, hashing as it goes; raise on a digest mismatch. Returns the size."""
    hasher = hashlib.sha256()
    size = 0
    buf = bytearray()
    for block in chunks:
        hasher.update(block)
        size += len(block)
        buf += block
        if len(buf) >= ENCODE_PIECE:
            n = len(buf) - len(buf) % ENCODE_PIECE
            xf.write(base64.encodebytes(bytes(buf[:n])).decode("ascii"))
            xf.flush()  # a buffered xmlfile otherwise keeps everything until the end
            del buf[:n]
    if buf:
        xf.write(base64.encodebytes(bytes(buf)).decode("ascii"))
    found = hasher.hexdigest()
    if found != expected:
        raise _mismatch(rel, expected, found, size)
    return size


def _load_metadata(read: Reader, manifest: dict[str, str]) -> tuple[etree._Element, MetadataView]:
    if METADATA_FILE not in manifest:
        raise _error("EEP-PACKAGE-INCOMPLETE", MANIFEST_SHA256, f"{METADATA_FILE} is not listed")
    data = _read_small(read, METADATA_FILE)
    found = hashlib.sha256(data).hexdigest()
    if found != manifest[METADATA_FILE]:
        raise _mismatch(METADATA_FILE, manifest[METADATA_FILE], found, len(data))
    try:
        tree = parse_xml(data)
    except etree.XMLSyntaxError as exc:
        raise _error("EEP-PACKAGE-INCOMPLETE", METADATA_FILE, f"not well-formed XML: {exc}") from exc
    view = read_metadata(tree)
    if not view.archival_code:
        raise _error("EEP-PACKAGE-INCOMPLETE", METADATA_FILE, "no 档号/完整档号")
    for d in view.documents:
        if not d.path or d.path not in manifest:
            raise _error("EEP-PACKAGE-INCOMPLETE", f"{METADATA_FILE} 文件[{d.index}]",
                         f"document {d.path!r} is not listed in {MANIFEST_SHA256}")
    return tree.getroot(), view


def write_eep(read: Reader, out: Path, *, creator: str, created_at: datetime) -> EepResult:
    """Write the EEP of the package that `read` serves to `out` (via `out.part`, renamed at the end).

    `creator` is the 封装包创建单位 (the fonds' name); `created_at` the 封装包创建时间. Raises
    EepError (partial output removed) when the package is incomplete or a file's SHA-256 differs
    from manifest-sha256.txt.
    """
    manifest = parse_manifest(_read_small(read, MANIFEST_SHA256).decode("utf-8", errors="replace"))
    metadata_root, view = _load_metadata(read, manifest)
    if view.archival_code is None:
        raise EepError("the package's metadata.xml names no 档号 (archival code)")
    part = out.with_name(out.name + ".part")
    content_bytes = 0
    try:
        with etree.xmlfile(str(part), encoding="utf-8") as xf:
            xf.write_declaration()
            with xf.element("电子文件封装包"):
                _leaf(xf, "封装包格式描述", EEP_FORMAT_DESCRIPTION)
                _leaf(xf, "版本", EEP_VERSION)
                with xf.element("被签名对象", {"eep版本": EEP_VERSION}):
                    _leaf(xf, "封装包类型", EEP_TYPE)
                    _leaf(xf, "封装包类型描述", EEP_TYPE_DESCRIPTION)
                    _leaf(xf, "封装包创建时间", created_at.isoformat(timespec="seconds"))
                    _leaf(xf, "封装包创建单位", creator)
                    with xf.element("封装内容"):
                        with xf.element("文件实体块"):
                            for d in view.documents:
                                content_bytes += _document(xf, read, d, view.archival_code, manifest)
                        xf.write(metadata_root)
            xf.flush()
        with part.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return EepResult(path=out, archival_code=view.archival_code, documents=len(view.documents),
                     content_bytes=content_bytes, size=out.stat().st_size)


def _document(xf: Any, read: Reader, d: MetadataDocument, archival_code: str, manifest: dict[str, str]) -> int:
    rel: str = d.path
    name = rel.rsplit("/", 1)[-1]
    with xf.element("文件实体", {"序号": str(d.index)}):
        _leaf(xf, "聚合层次", "文件")
        _leaf(xf, "档号", archival_code)
        _leaf(xf, "题名", d.title or name)
        if d.group:
            _leaf(xf, "材料类别", d.group)
        _leaf(xf, "相对路径", rel)
        with xf.element("文件数据"), xf.element("文档"):
            _leaf(xf, "文档标识符", f"{archival_code}/{rel}")
            _leaf(xf, "文档序号", str(d.index))
            with xf.element("文档数据", {"文档数据ID": f"D{d.index}"}), \
                    xf.element("编码", {"编码ID": f"E{d.index}"}):
                with xf.element("电子属性"):
                    if d.format:
                        _leaf(xf, "格式信息", d.format)
                    _leaf(xf, "计算机文件名", name)
                    if d.size is not None:
                        _leaf(xf, "计算机文件大小", str(d.size))
                    _leaf(xf, "SHA-256", manifest[rel])
                _leaf(xf, "编码描述", ENCODING_DESCRIPTION)
                _leaf(xf, "反编码关键字", DECODE_KEYWORD)
                with xf.element("编码数据"):
                    return _encode(xf, rel, read(rel), manifest[rel])


def export_eep_from_repository(repository: ObjectSource, package_key: str, out: Path, *, creator: str,
                               created_at: datetime) -> EepResult:
    """The EEP of the package stored under `package_key` (fs or s3 repository)."""
    return write_eep(repository_reader(repository, package_key), out, creator=creator, created_at=created_at)


def export_eep_from_folder(folder: Path, out: Path, *, creator: str, created_at: datetime) -> EepResult:
    """The EEP of a package folder (a staged or downloaded package)."""
    return write_eep(folder_reader(folder), out, creator=creator, created_at=created_at)


def eep_schema() -> etree.XMLSchema:
    """schemas/eep.xsd, parsed from its file so that its xs:include of metadata.xsd resolves.

    Built per call (a few milliseconds): validation is rare (the CLI, tests), and a fresh validator
    is never shared between threads."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    with resources.as_file(resources.files("schemas") / EEP_XSD) as path:
        return etree.XMLSchema(etree.parse(str(path), parser))


def validate_eep(path: Path) -> list[Finding]:
    """Validate an EEP file against schemas/eep.xsd (which includes metadata.xsd for the embedded 元数据).

    Parses the whole file (huge text nodes allowed: it is our own output, the big nodes are Base64),
    so callers keep this for files under VALIDATE_LIMIT_BYTES.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        tree = etree.parse(str(path), parser)
    except (etree.XMLSyntaxError, OSError) as exc:
        return [Finding("EEP-INVALID", path.name, f"not well-formed XML: {exc}")]
    return validate_eep_tree(tree, where=path.name)


def validate_eep_tree(tree: etree._ElementTree, *, where: str = "EEP") -> list[Finding]:
    """Every XSD error as an EEP-INVALID finding at `where`:line (messages masked: lxml quotes values)."""
    schema = eep_schema()
    if schema.validate(tree):
        return []
    return [Finding("EEP-INVALID", f"{where}:{e.line}", mask_text(e.message), details={"path": e.path})
            for e in schema.error_log]
