"""Finding what an operator names on the command line: a matter by (source, 办件编号), as the source
has it now or else as the ledger stored it; an archived package by its key, brought from the
archive repository into a folder to be checked again; the 全宗号 a package folder declares.

These need the connectors and the ledger together, which is why they live in night/ and not below;
the commands in flows/cli/ call them and turn their errors into messages and exit codes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.findings import GuidangError
from schemas.layout import is_dangerous_path

if TYPE_CHECKING:
    from connectors.repositories import Repository
    from ledger.models import MatterRecord
    from schemas.config import Settings, SqlSource, UnifiedSource
    from schemas.model import Matter


class MatterNotFound(GuidangError):
    """Neither the source nor the ledger has the matter (the message says why the source did not)."""


class PackageUnavailable(GuidangError):
    """A stored package could not be brought out of the repository (a missing or unreadable object, or
    a key that would escape the folder)."""


def matter_from_source_or_ledger(
    settings: Settings, source: UnifiedSource | SqlSource, project_id: str
) -> tuple[Matter, str, MatterRecord | None]:
    """The matter as the source has it now; the ledger's stored copy when the source cannot be reached
    (or no longer has it). Returns (matter, where it came from, the newest MatterRecord or None)."""
    from connectors.sources import open_source
    from ledger import queries, store
    from schemas.errors import SourceUnavailable
    from schemas.model import Matter, mask_text

    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        record = queries.latest_version(s, source.name, project_id)
        if record is not None:
            s.expunge(record)
    problem = ""
    try:
        conn = open_source(source, base_dir=settings.base_dir)
        try:
            fetched = conn.fetch_matter(project_id)
        finally:
            conn.close()
    except (SourceUnavailable, OSError) as exc:
        fetched, problem = None, f"source {source.name} is not reachable ({mask_text(str(exc))})"
    if isinstance(fetched, Matter):
        return fetched, f"source {source.name}", record
    if fetched is not None:
        problem = f"the source's record is invalid: {'; '.join(fetched.problems)}"
    elif not problem:
        problem = f"source {source.name} has no matter {project_id}"
    if record is None:
        raise MatterNotFound(f"{problem}, and the ledger holds no matter {source.name}/{project_id}")
    return Matter.model_validate(record.record), f"ledger ({problem})", record


def download_package(repository: Repository, package_key: str, dest: Path) -> list[str]:
    """Copy every object under `package_key/` into `dest`, streaming; returns the relative paths.

    Objects whose relative path would escape `dest` are refused (GuidangError): a repository key is
    checked on the way in, but a package being re-checked is exactly the thing not to trust."""
    prefix = package_key.rstrip("/") + "/"
    rels = []
    for obj in repository.list(prefix):
        rel = obj.key[len(prefix):]
        if is_dangerous_path(rel):
            raise GuidangError(f"{package_key}: refusing to download object {obj.key!r} (escapes the package)")
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            for chunk in repository.open(obj.key):
                fh.write(chunk)
        rels.append(rel)
    return rels


@contextmanager
def downloaded_package(repository: Repository, package_key: str) -> Iterator[tuple[Path, list[str]]]:
    """A stored package in a temporary folder, removed afterwards: (the folder, its relative paths).
    PackageUnavailable if it cannot be had; what the caller raises inside passes through unchanged."""
    with tempfile.TemporaryDirectory(prefix="guidang-check-") as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        try:
            rels = download_package(repository, package_key, folder)
        except GuidangError as exc:
            raise PackageUnavailable(str(exc)) from exc
        try:
            yield folder, rels
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def package_fonds(folder: Path) -> str | None:
    """The 全宗号 a package folder's 元数据.xml names (to pick its fonds' 档号 template), if readable."""
    from lxml import etree

    from schemas.layout import METADATA_FILE
    from schemas.metadata import read_metadata
    from schemas.xmlio import parse_xml

    try:
        return read_metadata(parse_xml(folder / METADATA_FILE)).fonds
    except (etree.XMLSyntaxError, OSError):  # a damaged 元数据.xml is for the checks to report
        return None
