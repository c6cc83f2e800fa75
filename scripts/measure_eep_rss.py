"""Measure the peak memory of the EEP export of a matter holding one large document.

Builds a package in a temporary folder (a 50 MB document by default, plus a small one), stores it in a
filesystem archive repository under its package key, then exports the EEP in a child process reading
from the repository, as `guidang export eep` does, and prints the child's peak RSS and the time. The
writer streams, so the peak should stay far below the document's size (target: < 200 MB). A second
child that only imports the writer gives the interpreter's own baseline.

    python scripts/measure_eep_rss.py [--mb 50]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from connectors.repositories import FilesystemRepository
from guidang_io.block_reads import digest_file
from schemas.layout import MANIFEST_SHA256, METADATA_FILE, package_key

CODE = "Z109-WS·2026·D30·SJ-0001"
BLOCK = 1024 * 1024

_METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<元数据 版本="1.0">
  <档号><全宗号>Z109</全宗号><门类代码>WS</门类代码><年度>2026</年度><保管期限>D30</保管期限>
    <机构问题代码>SJ</机构问题代码><件号>1</件号><完整档号>{code}</完整档号></档号>
  <文件信息>
    <文件 序号="1"><材料类别>申报材料</材料类别><题名>大附件</题名><文件名>big.bin</文件名>
      <相对路径>申报材料/big.bin</相对路径><格式>BIN</格式><大小>{size}</大小></文件>
    <文件 序号="2"><材料类别>结果材料</材料类别><题名>决定书</题名><文件名>决定书.txt</文件名>
      <相对路径>结果材料/决定书.txt</相对路径><格式>TXT</格式><大小>{small}</大小></文件>
  </文件信息>
</元数据>
"""

_CHILD = """
import resource
import sys
from datetime import datetime, timezone
from pathlib import Path
from connectors.repositories import FilesystemRepository
from guidang_io.block_reads import digest_file
from packager.eep import export_eep_from_repository
if sys.argv[1] == "export":
    res = export_eep_from_repository(FilesystemRepository(Path(sys.argv[2])), sys.argv[3], Path(sys.argv[4]),
                                     creator="西湖区", created_at=datetime.now(timezone.utc))
# VmHWM belongs to this program's address space; ru_maxrss also counts the parent's, inherited at exec.
try:
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build_package(folder: Path, megabytes: int) -> tuple[Path, int]:
    """A package folder with one `megabytes` MB document of random bytes and a small one."""
    (folder / "申报材料").mkdir(parents=True)
    (folder / "结果材料").mkdir()
    big = folder / "申报材料" / "big.bin"
    h = hashlib.sha256()
    with big.open("wb") as fh:
        for _ in range(megabytes):
            block = os.urandom(BLOCK)
            h.update(block)
            fh.write(block)
    small = "准予许可。\n".encode()
    (folder / "结果材料" / "决定书.txt").write_bytes(small)
    metadata = _METADATA.format(code=CODE, size=big.stat().st_size, small=len(small)).encode()
    (folder / METADATA_FILE).write_bytes(metadata)
    rows = {
        "申报材料/big.bin": h.hexdigest(),
        "结果材料/决定书.txt": hashlib.sha256(small).hexdigest(),
        METADATA_FILE: hashlib.sha256(metadata).hexdigest(),
    }
    (folder / MANIFEST_SHA256).write_text("".join(f"{d}  {p}\n" for p, d in sorted(rows.items())), encoding="utf-8")
    return big, big.stat().st_size


def measure(megabytes: int) -> dict[str, float]:
    """Build, store and export; returns sizes (MiB), the baseline and export peak RSS (MiB) and seconds."""
    project = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": project + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory(prefix="guidang-eep-rss-") as tmp:
        base = Path(tmp)
        folder = base / "package"
        _, size = build_package(folder, megabytes)
        repo = FilesystemRepository(base / "archive", create=True)
        key = package_key("Z109", 2026, "D30", CODE)
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                repo.put_file(f"{key}/{p.relative_to(folder).as_posix()}", p, digest_file(p).sha256)
        # Each child also reports its own peak (VmHWM): RUSAGE_CHILDREN is the largest over every child
        # this process waited for, and a child's ru_maxrss starts at its parent's RSS (kept across exec),
        # so under a big parent (pytest) only the child's own figure measures the export.
        baseline = subprocess.run([sys.executable, "-c", _CHILD, "baseline"], check=True, env=env,
                                  capture_output=True, text=True)
        out = base / "eep.xml"
        t0 = time.perf_counter()
        export = subprocess.run([sys.executable, "-c", _CHILD, "export", str(base / "archive"), key, str(out)],
                                check=True, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return {"document_mib": size / BLOCK, "eep_mib": out.stat().st_size / BLOCK,
                "baseline_rss_mib": int(baseline.stdout.split()[-1]) / 1024,
                "peak_rss_mib": int(export.stdout.split()[-1]) / 1024,
                "children_rss_mib": children_kb / 1024, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="size of the large document in MiB")
    args = parser.parse_args()
    m = measure(args.mb)
    print(f"document: {m['document_mib']:.0f} MiB; EEP written: {m['eep_mib']:.1f} MiB")
    print(f"baseline child (imports only): peak RSS {m['baseline_rss_mib']:.1f} MiB")
    print(f"export child: peak RSS {m['peak_rss_mib']:.1f} MiB, {m['seconds']:.2f} s "
          f"(getrusage(RUSAGE_CHILDREN).ru_maxrss: {m['children_rss_mib']:.1f} MiB)")
    print("target < 200 MiB:", "met" if m["peak_rss_mib"] < 200 else "NOT met")
    if m["peak_rss_mib"] >= 200:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
