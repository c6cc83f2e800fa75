"""The package layout (归档信息包, DA/T 93 件-level) and repository keys, defined once.

Packager, repositories, checks and the audit all import these names; none of them spells a file
name of the package on its own.
"""

from __future__ import annotations

from schemas.model import DocumentGroup

METADATA_FILE = "元数据.xml"
CHECK_REPORT_FILE = "检测报告.xml"
MANIFEST_SM3 = "manifest-sm3.txt"
MANIFEST_SHA256 = "manifest-sha256.txt"
# Written last; a package without it is not complete, whatever else is there.
COMPLETION_MARKER = "_COMPLETE"

GROUP_FOLDERS: tuple[str, ...] = tuple(g.value for g in DocumentGroup)

# Files that the manifests list: every document and 元数据.xml (the manifests cannot list
# themselves; 检测报告.xml is written after they are and is covered by the completion marker).
TRANSFERS_PREFIX = "transfers"


def document_path(group: DocumentGroup, file_name: str) -> str:
    """Relative path of a document inside its package, after `safe_relative_path` has passed it."""
    return f"{group.value}/{file_name}"


def package_key(fonds: str, year: int, period: str, archival_code: str) -> str:
    """`<全宗号>/<年度>/<保管期限>/<档号>`: the prefix of every object of one package."""
    return f"{fonds}/{year}/{period}/{archival_code}"


def transfer_key(batch_id: str) -> str:
    return f"{TRANSFERS_PREFIX}/{batch_id}"


def is_dangerous_path(rel: str) -> bool:
    """True when `rel` would escape the folder it is meant to stay in.

    Refused: empty names, absolute paths (POSIX or Windows drive/UNC), any `..` segment, `.`
    segments, backslashes (a Windows separator a POSIX check would miss) and control characters.
    The single gate every file name from a source and every manifest path passes through.
    """
    if not rel or rel != rel.strip() or "\\" in rel or any(ord(c) < 32 for c in rel):
        return True
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return True
    # Split by hand: PurePosixPath would normalise "a//b" and "a/./b" away before we could see them.
    parts = rel.split("/")
    return any(p in ("..", ".", "") for p in parts) or rel.endswith("/")
