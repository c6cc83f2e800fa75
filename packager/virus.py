"""Virus scanning (病毒检测, GD-4-1) with ClamAV: clamd's INSTREAM over its socket, or clamscan.

Each document is scanned once, at staging, as it lies in the staging folder; the package check
reads that result and scans itself only when it checks a stored package. clamd is the production
path (the signature database is loaded once by the daemon; INSTREAM sends the file in 1 MiB chunks,
so it is never held in memory and clamd needs no access to our folders); clamscan loads the whole
database on every call, which is fine for a small database and slow for the full one.

A scanner that is configured but cannot be reached, times out or reports an error gives a result
with `error` set: GD-4-1 then fails (it is never quietly skipped), while an unconfigured scanner is
"not performed".
"""

from __future__ import annotations

import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VirusResult:
    scanner: str  # "clamd unix:/run/clamav/clamd.ctl", "clamscan"
    infected: str | None = None  # the signature name, e.g. "Eicar-Signature"
    error: str | None = None  # the scanner could not give an answer

    @property
    def clean(self) -> bool:
        return self.infected is None and self.error is None


@dataclass(frozen=True, slots=True)
class VirusScanner:
    """How to reach ClamAV: `clamd` is a unix socket path or tcp://host:port; else `clamscan` is the
    program (with `database`, a folder or file, passed as -d)."""

    clamd: str | None = None
    clamscan: str | None = None
    database: str | None = None
    timeout_seconds: float = 600

    @property
    def label(self) -> str:
        return f"clamd {self.clamd}" if self.clamd else f"clamscan {self.clamscan}"

    def scan(self, path: Path) -> VirusResult:
        if self.clamd:
            return self._clamd(path)
        return self._clamscan(path)

    def _connect(self) -> socket.socket:
        target = self.clamd or ""
        if target.startswith("tcp://"):
            host, _, port = target.removeprefix("tcp://").rpartition(":")
            return socket.create_connection((host, int(port)), timeout=self.timeout_seconds)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_seconds)
        sock.connect(target.removeprefix("unix:"))
        return sock

    def _clamd(self, path: Path) -> VirusResult:
        label = self.label
        try:
            with self._connect() as sock, path.open("rb") as fh:
                sock.sendall(b"zINSTREAM\0")
                while chunk := fh.read(CHUNK):
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                sock.sendall(struct.pack(">I", 0))
                reply = b""
                while not reply.endswith(b"\0"):
                    part = sock.recv(4096)
                    if not part:
                        break
                    reply += part
        except OSError as exc:  # refused, missing socket, timeout, clamd closing on a size limit
            return VirusResult(label, error=f"{label}: {type(exc).__name__}: {exc}")
        return _verdict(label, reply.rstrip(b"\0").decode("utf-8", "replace").strip())

    def _clamscan(self, path: Path) -> VirusResult:
        label = self.label
        args = [self.clamscan or "clamscan", "--no-summary", "--stdout"]
        if self.database:
            args.append(f"--database={self.database}")
        args += ["--", str(path)]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=self.timeout_seconds, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return VirusResult(label, error=f"{label}: {type(exc).__name__}: {exc}")
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if proc.returncode == 0:
            return VirusResult(label)
        if proc.returncode == 1 and line.endswith(" FOUND"):
            return VirusResult(label, infected=line.rpartition(": ")[2].removesuffix(" FOUND"))
        detail = (proc.stderr or proc.stdout).strip().replace(str(path), path.name)[:300]
        return VirusResult(label, error=f"{label} exit {proc.returncode}: {detail}")


def _verdict(label: str, reply: str) -> VirusResult:
    # "stream: OK", "stream: Eicar-Signature FOUND", "INSTREAM size limit exceeded. ERROR"
    if reply.endswith(": OK"):
        return VirusResult(label)
    if reply.endswith(" FOUND"):
        return VirusResult(label, infected=reply.partition(": ")[2].removesuffix(" FOUND"))
    return VirusResult(label, error=f"{label}: {reply or 'no answer'}")
