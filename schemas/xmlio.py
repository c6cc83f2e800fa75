"""Untrusted XML: parsing without network or entities, and XSD validators kept per thread.

Every XML guidang reads back (元数据.xml, 检测报告, the DA/T 93 batch files, the EEP wrapper) may
come from a damaged or hostile package, so all of it is parsed here; every XSD under schemas/ is
parsed once per thread and its errors become findings with masked messages.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from schemas.findings import Finding
from schemas.model import mask_text


@cache
def _xsd_bytes(name: str) -> bytes:
    return (resources.files("schemas") / name).read_bytes()


class _ThreadSchemas(threading.local):
    """Per-thread validators. lxml objects must not cross threads (they share the creating thread's
    dictionary, and a validator keeps its error log on the instance); a cache keyed by thread id would
    hand a dead thread's schema to a new thread that reuses its id, which can crash the interpreter."""

    def __init__(self) -> None:
        self.schemas: dict[str, etree.XMLSchema] = {}


_THREAD_SCHEMAS = _ThreadSchemas()
_XSD_PARSE_LOCK = threading.Lock()


def load_xsd(name: str) -> etree.XMLSchema:
    """A schema under schemas/ by file name (e.g. "metadata.xsd"), parsed once per thread."""
    schema = _THREAD_SCHEMAS.schemas.get(name)
    if schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        # libxml2 builds its table of XSD built-in types on the first schema parse, and two threads
        # doing that at once corrupt it for the process ("the given type is not a built-in type"
        # ever after): schema parsing is serialized.
        with _XSD_PARSE_LOCK:
            schema = etree.XMLSchema(etree.fromstring(_xsd_bytes(name), parser))
        _THREAD_SCHEMAS.schemas[name] = schema
    return schema


def parse_xml(source: bytes | Path) -> etree._ElementTree:
    """Parse without network access or entity expansion: package files are untrusted input."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    if isinstance(source, Path):
        return etree.parse(str(source), parser)
    return etree.ElementTree(etree.fromstring(source, parser))


def validate_xml(
    source: bytes | Path | etree._ElementTree, xsd_name: str, *, code: str, where: str
) -> list[Finding]:
    """Every XSD (or well-formedness) error as a finding `code` at `where`:line. Messages pass
    through mask_text because lxml quotes offending values, which may be identity numbers."""
    try:
        tree = source if isinstance(source, etree._ElementTree) else parse_xml(source)
    except (etree.XMLSyntaxError, OSError) as exc:
        return [Finding(code, where, mask_text(f"not well-formed XML: {exc}"))]
    schema = load_xsd(xsd_name)
    if schema.validate(tree):
        return []
    return [
        Finding(code, f"{where}:{e.line}", mask_text(e.message), details={"path": e.path})
        for e in schema.error_log
    ]
