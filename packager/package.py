"""Stage B of packaging: turn a staged matter into the 归档信息包 and check it (四性检测).

Runs after the ledger has allocated the 件号, so everything that could fail for reasons of the
matter itself was already found by staging; what can still fail here is the metadata (XSD) and
the checks. The package is a pure function of its inputs: `archived_at` comes from the caller and
no clock, path or environment value is written, so finalizing the same staged matter twice gives
byte-identical files (a retried transfer re-uploads exactly what the ledger already describes).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from guidang_io.block_reads import digest_file
from packager.check_context import KnownFacts
from packager.check_report import CheckReport, validate_check_report
from packager.checks import check_package, renumbered
from packager.quarantine_error import QuarantineError
from packager.stage import StagedMatter
from schemas.config import Fonds
from schemas.digest import Digests, digest_chunks
from schemas.findings import Finding, GuidangError
from schemas.layout import CHECK_REPORT_FILE, MANIFEST_SHA256, MANIFEST_SM3, METADATA_FILE
from schemas.manifest import manifest_text
from schemas.metadata import build_metadata, validate_metadata
from schemas.xmlio import parse_xml


class PackageFile(NamedTuple):
    path: str  # relative to the package folder, POSIX separators
    size: int
    sha256: str
    sm3: str


@dataclass(frozen=True, slots=True)
class PackageResult:
    """The finished package: `files` lists every file (documents, 元数据.xml, both manifests and
    检测报告.xml) sorted by path, which is what a repository uploads and verifies."""

    folder: Path
    files: list[PackageFile]
    report: CheckReport
    findings: list[Finding] = field(default_factory=list)  # of failed items, downgraded ones included
    passed: bool = True
    page_count: int = 0  # 页数: pages of all documents (those with pages)


def manifest_texts(files: Iterable[PackageFile]) -> dict[str, bytes]:
    """manifest-sm3.txt and manifest-sha256.txt for `files`, as the bytes to write."""
    files = list(files)
    return {name: manifest_text((f.path, getattr(f, attr)) for f in files).encode("utf-8")
            for name, attr in ((MANIFEST_SM3, "sm3"), (MANIFEST_SHA256, "sha256"))}


def finalize_package(
    staged: StagedMatter,
    *,
    fonds: Fonds,
    archival_code: str,
    item_number: int,
    archived_at: datetime,
    check_warnings: Collection[str] = (),
    write: bool = True,
    prechecked: CheckReport | None = None,
) -> PackageResult:
    """Write 元数据.xml, the manifests and 检测报告.xml into the staged folder, checking the package.

    Raises QuarantineError with Q-METADATA-INVALID (nothing written) when the metadata does not
    validate, or with Q-CHECK-FAILED plus the failed items' findings when an item not listed in
    `check_warnings` fails (the folder, report included, is left for inspection; `discard` it).

    `write=False` builds and checks the same package in memory and writes nothing: the precheck
    before numbering (night/staging.precheck), whose provisional 档号 is never stored, so writing its
    four files only for the real build to delete and write them again cost eight file operations
    a matter. Its 检测报告 is not serialised either; the real build's is.

    `prechecked` is that provisional build's report (`PackageResult.report`): the real build then
    checks again only what the 档号 and 件号 can change (checks.renumbered) instead of every item,
    when the precheck found nothing at all; the report is the one the whole check would give.
    """
    matter = staged.matter
    if item_number < 1:
        raise GuidangError(f"matter {matter.key}: 件号 must be >= 1, got {item_number}")
    folder = staged.folder
    if write:
        for name in (CHECK_REPORT_FILE, MANIFEST_SM3, MANIFEST_SHA256, METADATA_FILE):
            (folder / name).unlink(missing_ok=True)

    metadata = build_metadata(
        matter, staged.appraisal, [d.entry() for d in staged.documents],
        fonds=fonds, archival_code=archival_code, item_number=item_number, archived_at=archived_at,
    )
    tree = parse_xml(metadata)
    invalid = validate_metadata(tree)
    if invalid:
        raise QuarantineError(matter.key, [
            Finding("Q-METADATA-INVALID", f"{matter.key} {f.where}", f.message, details=f.details) for f in invalid
        ])
    md = digest_chunks([metadata])
    listed = [PackageFile(d.path, d.size, d.sha256, d.sm3) for d in staged.documents]
    listed.append(PackageFile(METADATA_FILE, md.size, md.sha256, md.sm3))
    texts = manifest_texts(listed)
    unwritten = {METADATA_FILE: metadata, **texts}
    if write:
        for name, data in unwritten.items():
            (folder / name).write_bytes(data)
        unwritten = {}
    manifests = [PackageFile(name, d.size, d.sha256, d.sm3)
                 for name, d in ((name, digest_chunks([data])) for name, data in texts.items())]

    # Every byte here was measured as it was written (staging's pass, the XML in memory): the check
    # takes those figures instead of reading the package again (the read-back proves the bytes).
    known = KnownFacts(
        digests={f.path: Digests(f.sm3, f.sha256, f.size) for f in (*listed, *manifests)},
        formats={d.path: d.format for d in staged.documents},
        pdfs={d.path: d.pdf for d in staged.documents if d.pdf is not None},
        content={d.path: d.content for d in staged.documents if d.content is not None},
        metadata=tree,
        unwritten=unwritten,
    )
    report = None if prechecked is None else renumbered(
        prechecked, tree, archival_code_template=fonds.archival_code_template, warnings=check_warnings,
        checked_at=archived_at,
    )
    report = report or check_package(
        folder,
        level="full",
        source_digests={d.path: d.source_digest() for d in staged.documents},
        archival_code_template=fonds.archival_code_template,
        warnings=check_warnings,
        checked_at=archived_at,
        pdf_parse_limit=staged.pdf_parse_limit,
        known=known,
        content=staged.content_options,
    )
    written: list[PackageFile] = []  # the report, when it is written
    if write:
        report_xml = report.to_xml()
        problems = validate_check_report(report_xml)
        if problems:  # our own output: a bug, not the matter's fault
            raise GuidangError(f"matter {matter.key}: 检测报告.xml does not validate: {problems}")
        (folder / CHECK_REPORT_FILE).write_bytes(report_xml)
        rd = digest_chunks([report_xml])
        written.append(PackageFile(CHECK_REPORT_FILE, rd.size, rd.sha256, rd.sm3))

    if not report.passed:
        failed = ", ".join(i.code for i in report.failed_items)
        raise QuarantineError(matter.key, [
            Finding("Q-CHECK-FAILED", matter.key, f"四性检测 failed: {failed}",
                    details={"items": [i.code for i in report.failed_items]}),
            *[f for i in report.failed_items for f in i.findings],
        ])
    files = sorted([*listed, *manifests, *written])
    return PackageResult(folder=folder, files=files, report=report, findings=report.findings, passed=True,
                         page_count=sum(d.pages or 0 for d in staged.documents))


def package_files(folder: Path) -> list[PackageFile]:
    """Every regular file of a package folder with its digests (one read each), sorted by path;
    for re-verifying a package that is no longer held as a PackageResult."""
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        d = digest_file(path)
        out.append(PackageFile(path.relative_to(folder).as_posix(), d.size, d.sha256, d.sm3))
    return sorted(out)


def discard(staged: StagedMatter) -> None:
    """Remove a staged matter's folder (a quarantined matter's: its copies are not in the archive)."""
    shutil.rmtree(staged.folder, ignore_errors=True)


RETIRED = ".retired"  # a staging root's folder of transferred matters, removed with the root


def clear_retired(root: Path) -> Callable[[], None]:
    """Start removing `root`'s `.retired` folder beside the caller, once no matter of the run will
    be retired any more; returns the wait for its end, to call before removing the root.

    Why beside: removing a night's transferred folders (links and folders, about 0.4 s for 600
    matters on the bench machine) is system calls, and the night's last steps (the DA/T 93 batches,
    the run row) are the ledger's work, with the night's workers idle. Why a process (`rm -rf`)
    and not a thread: a thread gets the interpreter's lock back only between the batches' own
    turns, once per switch interval for each of its thousands of calls, and lasts longer than the
    batches beside it. Where there is no `rm`, the removal is done here and now."""
    folder = root / RETIRED
    rm = shutil.which("rm")
    if rm is None or not folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
        return lambda: None
    proc = subprocess.Popen([rm, "-rf", "--", str(folder)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait() -> None:
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)  # whatever `rm` left (none expected)

    return wait


def retire(folder: Path, document: Path) -> None:
    """Move a transferred matter's staging folder out of the way, into `.retired` of its staging
    root, which goes when the run's staging does (night/context.close_run; a killed run's with the
    next run's remove_stale_staging) - when its files are hard links of the archive's, which one
    `document` of it tells (one stat). A folder of copies (an S3 archive, another file system) is
    removed at once: kept, a night's staging would hold every document it transferred.

    Deleting a folder of links frees nothing worth having, only the folders' own inodes. And freed
    inodes cost the files created after them: ext4 without a journal skips each inode freed in the
    last 10-15 seconds when it allocates one (ialloc.c, recently_deleted), and a night creating
    thousands of files in those seconds spent about a tenth of its CPU there on the bench machine.
    One rename frees nothing and is a single system call where the removal was a dozen. A name
    already retired (a retried worker's) is removed instead."""
    try:
        linked = document.stat().st_nlink > 1
    except OSError:
        linked = False
    if linked:
        target = folder.parent / RETIRED / folder.name
        try:
            folder.rename(target)
            return
        except FileNotFoundError:  # the first of the run: `.retired` is made then, not tried for every matter
            try:
                target.parent.mkdir(exist_ok=True)
                folder.rename(target)
                return
            except OSError:
                pass
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)
