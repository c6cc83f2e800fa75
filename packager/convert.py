"""格式转换: a PDF/A-2b rendition of an office document, made with LibreOffice headless.

One `soffice --convert-to` per document, not a warm server (unoserver). Measured on the bench
machine (2 cores, LibreOffice 7.4, a small DOCX): ~3.6 s when LibreOffice has to build its user
profile, 1.0 to 3 s once the profile exists (most of it LibreOffice's start), and 0.25 to 0.4 s
through a running unoserver. The profile is what makes the first start slow, so each conversion
slot keeps its own profile between documents (`-env:UserInstallation`), and a slot is held under
an exclusive file lock, which is also what bounds the conversions running at once on one machine
across the worker processes of a night. A warm server would be several times faster per document,
but it is a process to supervise, restart after a crash or a hung document and share between
workers, and unoserver needs LibreOffice's Python bindings (Debian's python3-uno, for the system's
Python, not the one guidang runs in); a fresh process per document is killed, with its whole
process group, when it passes the time limit, and leaves nothing behind that the next document
could inherit. Office documents are a minority of a night's documents; if they were not, the
server would be the better trade.

LibreOffice picks its import filter by the file's content and name; the input is therefore given
a name whose extension is the format the content was identified as (a Kingsoft .wps file that is
a Word document would otherwise be opened as Microsoft Works). Two conversions of one document give the same pages
and, once packager/rendition_bytes.py has settled what LibreOffice writes differently on every
run (dates, /ID, the output profile's date), the same bytes: a resumed night rebuilds its packages
byte for byte.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packager.rendition_bytes import SettleError, settle
from schemas.pickling import by_fields

TARGET_FORMAT = "PDF/A-2b"
TOOL = "LibreOffice"
# The export filter per kind of document; SelectPdfVersion 2 is PDF/A-2b.
_FILTERS = {"writer": "writer_pdf_Export", "calc": "calc_pdf_Export", "impress": "impress_pdf_Export",
            "draw": "draw_pdf_Export", "web": "writer_web_pdf_Export"}
_KIND = {"doc": "writer", "docx": "writer", "odt": "writer", "rtf": "writer", "wps": "writer",
         "xls": "calc", "xlsx": "calc", "ods": "calc", "et": "calc",
         "ppt": "impress", "pptx": "impress", "odp": "impress", "dps": "impress",
         "odg": "draw", "html": "web", "htm": "web"}
_MESSAGE_LIMIT = 600


class ConversionError(Exception):
    """The conversion did not produce a rendition; the message is the converter's."""


class ConverterMissing(ConversionError):
    """No LibreOffice on this machine (or the configured program does not exist)."""


@by_fields
@dataclass(frozen=True, slots=True)
class ConverterOptions:
    program: str = "soffice"
    timeout_seconds: float = 180
    max_parallel: int = 2
    profiles: Path | None = None  # the slots' profiles and locks; a folder under the system's temp when None

    @property
    def root(self) -> Path:
        return self.profiles or Path(tempfile.gettempdir()) / "guidang-converter"


@dataclass(frozen=True, slots=True)
class Conversion:
    tool: str
    tool_version: str
    target_format: str
    seconds: float


def find_program(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise ConverterMissing(f"LibreOffice is not installed on this machine ({program!r} not found); "
                               "install libreoffice-writer-nogui, -calc-nogui and -impress-nogui, or set "
                               "formats.converter.program")
    return found


_VERSIONS: dict[str, str] = {}


def tool_version(program: str, timeout: float) -> str:
    """`soffice --version` ("LibreOffice 7.4.7.2 40(Build:2)") -> "7.4.7.2"; asked once per process,
    within the conversion's time limit (killed with its group past it, like a conversion)."""
    if program in _VERSIONS:
        return _VERSIONS[program]
    try:
        proc = subprocess.Popen([program, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        raise ConverterMissing(f"{program} does not run: {exc}") from exc
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"{TOOL} did not answer --version within {timeout:g} s and was killed") from None
    finally:
        _kill_group(proc)
    words = output.decode("utf-8", "replace").split()
    version = words[1] if len(words) > 1 and words[0] == TOOL else (" ".join(words[:2]) or "unknown")
    _VERSIONS[program] = version
    return version


_LOCAL = threading.Lock()
_SLOT_POLL = 0.2


@contextlib.contextmanager
def _slot(options: ConverterOptions) -> Iterator[Path]:
    """An exclusive conversion slot (its profile folder), waited for while all are taken. The lock
    is an flock on the slot's lock file: held by one process at a time, whichever thread of it,
    and released by the kernel when a worker dies."""
    root = options.root
    root.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(options.max_parallel):
            lock_path = root / f"slot-{i}.lock"
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                with _LOCAL:  # flock is per open file: two threads of one process each get their own
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield root / f"slot-{i}"
                return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        time.sleep(_SLOT_POLL)


def convert_to_pdfa(source: Path, converts_as: str, out: Path, options: ConverterOptions,
                    sha256: str | None = None) -> Conversion:
    """Write a PDF/A-2b rendition of `source` (whose content is `converts_as`: docx, xls, …) to
    `out`. `source` is only read; `sha256` is its digest (computed when not given), from which the
    rendition's /ID is derived.
    Raises ConverterMissing without LibreOffice, ConversionError when it fails or passes the time
    limit (killed with its process group)."""
    program = find_program(options.program)
    version = tool_version(program, options.timeout_seconds)
    if sha256 is None:
        sha256 = _sha256(source)
    made = _convert(source, converts_as, out, options, program, version)
    try:
        settle(out, sha256)
    except SettleError as exc:
        raise ConversionError(f"{TOOL} {version}: {exc}") from exc
    return made


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _convert(source: Path, converts_as: str, out: Path, options: ConverterOptions, program: str,
             version: str) -> Conversion:
    kind = _KIND.get(converts_as.lower(), "writer")
    export = f'pdf:{_FILTERS[kind]}:{{"SelectPdfVersion":{{"type":"long","value":"2"}}}}'
    with _slot(options) as profile, tempfile.TemporaryDirectory(prefix="convert-", dir=profile.parent) as work:
        given = Path(work) / f"document.{converts_as.lower()}"
        try:
            os.link(source, given)
        except OSError:
            shutil.copyfile(source, given)
        clock = time.monotonic()
        command = [program, f"-env:UserInstallation={profile.resolve().as_uri()}", "--headless", "--invisible",
                   "--norestore", "--nolockcheck", "--nodefault", "--nologo",
                   "--convert-to", export, "--outdir", str(Path(work) / "out"), str(given)]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=work)
        try:
            output, _ = proc.communicate(timeout=options.timeout_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            shutil.rmtree(profile, ignore_errors=True)  # a killed LibreOffice may leave its profile locked
            raise ConversionError(f"{TOOL} did not finish within {options.timeout_seconds:g} s and was killed") \
                from None
        finally:
            _kill_group(proc)  # anything it left running in its group (a stray soffice.bin)
        produced = Path(work) / "out" / "document.pdf"
        if proc.returncode != 0 or not produced.is_file() or produced.stat().st_size == 0:
            raise ConversionError(f"{TOOL} {version} exit status {proc.returncode}, no PDF written: "
                                  f"{_tail(output)}")
        shutil.move(produced, out)
    return Conversion(tool=TOOL, tool_version=version, target_format=TARGET_FORMAT,
                      seconds=time.monotonic() - clock)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _tail(output: bytes | None) -> str:
    lines = [line for line in (output or b"").decode("utf-8", "replace").splitlines()
             if line.strip() and "javaldx" not in line]
    text = " | ".join(lines) or "(no output)"
    return text if len(text) <= _MESSAGE_LIMIT else "…" + text[-_MESSAGE_LIMIT:]
