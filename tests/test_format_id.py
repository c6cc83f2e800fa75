"""guidang's PRONOM matcher answers what plain FIDO answers, file by file.

packager/format_id.py tries a file only against the formats whose signatures its bytes could
match (packager/format_index.py derives the conditions from each regex). These tests run plain
FIDO (`Fido.match_formats`, its own loop over every format) and the matcher over the same buffers
and compare the PUIDs found, over two corpora: files of the formats governments hand in, made here
(PDF of every version, PDF/A, OFD, ZIP and Office containers, JPEG, PNG, TIFF, GIF, BMP, WebP,
XML, HTML, RTF, text, empty and random bytes, truncated and re-cut files), and files built from
PRONOM's own signatures (each signature's literals placed where its regex expects them), which
reach formats no generator here writes.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections import Counter

import pytest

from guidang_demo.bench_world import bench_pdf
from guidang_demo.ofds import make_ofd
from guidang_demo.pdfs import make_broken_pdf, make_pdf
from packager import format_id
from packager.format_index import pattern_facts

BUFFER = format_id.BUFFER_SIZE


@pytest.fixture(scope="module")
def fido():
    from fido.fido import Fido

    return Fido(quiet=True, handle_matches=lambda *a, **k: None, format_files=format_id._format_files(),
                nocontainer=True)


def buffers(data: bytes) -> tuple[bytes, bytes]:
    """What identify_pronom hands the matcher (and FIDO reads): the first and last BUFFER_SIZE bytes."""
    return data[:BUFFER], (data if len(data) <= BUFFER else data[-BUFFER:])


def assert_same(fido, corpus: dict[str, bytes]) -> Counter:
    matcher = format_id._matcher()
    found: Counter = Counter()
    for name, data in corpus.items():
        head, tail = buffers(data)
        theirs = sorted(fmt.find("puid").text for fmt, _ in fido.match_formats(head, tail))
        ours = sorted(entry.puid for entry in matcher.match(head, tail))
        assert ours == theirs, f"{name}: FIDO finds {theirs}, guidang's matcher {ours}"
        found.update(set(theirs))
    return found


def _image(fmt: str, **kwargs) -> bytes:
    from PIL import Image

    rng = random.Random(fmt)
    img = Image.frombytes("RGB", (64, 48), rng.randbytes(64 * 48 * 3))
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def government_corpus() -> dict[str, bytes]:
    rng = random.Random(9)
    pdf = make_pdf(["证照 license 2026"], pages=2)
    big_pdf = bench_pdf(rng, 400_000, "scan")  # head and tail are different buffers
    corpus: dict[str, bytes] = {"fpdf2.pdf": pdf, "bench-1.7.pdf": big_pdf, "broken.pdf": make_broken_pdf(["x"])}
    for version in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "2.0"):
        corpus[f"pdf-{version}.pdf"] = pdf.replace(b"%PDF-1.3", f"%PDF-{version}".encode(), 1)
        corpus[f"big-pdf-{version}.pdf"] = big_pdf.replace(b"%PDF-1.7", f"%PDF-{version}".encode(), 1)
    xmp = (b"<x:xmpmeta><rdf:Description xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" "
           b"pdfaid:part=\"%s\" pdfaid:conformance=\"%s\"/></x:xmpmeta>")
    for part, level in (("1", "B"), ("1", "A"), ("2", "B"), ("2", "U"), ("3", "B"), ("3", "A")):
        corpus[f"pdfa-{part}{level}.pdf"] = pdf.replace(b"\n", b"\n" + xmp % (part.encode(), level.encode()) + b"\n", 2)
    corpus["pdf-no-eof.pdf"] = pdf.replace(b"%%EOF", b"")
    corpus["pdf-late-header.pdf"] = b"junk" * 40 + pdf
    corpus["ofd.ofd"] = make_ofd(["电子证照"], pages=2, sealed=True)
    corpus["zip.zip"] = _zip({"a.txt": b"hello"})
    corpus["docx.docx"] = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    corpus["odt.odt"] = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"})
    for fmt, ext, kwargs in (("JPEG", "jpg", {}), ("JPEG", "jpeg", {"progressive": True}), ("PNG", "png", {}),
                             ("TIFF", "tif", {}), ("TIFF", "tiff", {"compression": "tiff_lzw"}), ("GIF", "gif", {}),
                             ("BMP", "bmp", {}), ("WEBP", "webp", {}), ("ICO", "ico", {}), ("PPM", "ppm", {})):
        corpus[f"image-{len(corpus)}.{ext}"] = _image(fmt, **kwargs)
    corpus["exif.jpg"] = _image("JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")
    corpus["big.tif"] = _image("TIFF") + rng.randbytes(300_000)
    corpus["xml.xml"] = '<?xml version="1.0" encoding="UTF-8"?>\n<电子文件><标题>归档</标题></电子文件>\n'.encode()
    corpus["xsd.xsd"] = b'<?xml version="1.0"?>\n<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"></xs:schema>\n'
    corpus["xhtml.html"] = (b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x">\n'
                            b'<html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>')
    corpus["html.html"] = b"<!DOCTYPE html>\n<html><head><title>t</title></head><body>x</body></html>\n"
    corpus["html4.htm"] = b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n<HTML><BODY>x</BODY></HTML>\n'
    corpus["rtf.rtf"] = b"{\\rtf1\\ansi\\ansicpg936\\deff0 {\\fonttbl{\\f0 SimSun;}} text}"
    corpus["text.txt"] = "办件编号 330106 申请人 张三\n".encode() * 50
    corpus["csv.csv"] = b"a,b,c\n1,2,3\n"
    corpus["json.json"] = b'{"asset": {"version": "2.0"}, "x": 1}'
    corpus["ps.ps"] = b"%!PS-Adobe-3.0\n%%Creator: x\n%%EOF\n"
    corpus["eps.eps"] = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n%%EOF\n"
    corpus["gzip.gz"] = b"\x1f\x8b\x08\x00" + rng.randbytes(200)
    corpus["ole.doc"] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + rng.randbytes(2048)
    corpus["empty"] = b""
    corpus["one-byte"] = b"%"
    corpus["random-small"] = rng.randbytes(700)
    corpus["random-big"] = rng.randbytes(300_000)
    corpus["zeros"] = bytes(200_000)
    for name in list(corpus):  # cut short, and only the end: what a damaged transfer leaves
        data = corpus[name]
        if len(data) > 64:
            corpus[f"{name}-head-only"] = data[: len(data) // 2]
            corpus[f"{name}-tail-only"] = data[len(data) // 2:]
    return corpus


def signature_corpus(step: int) -> dict[str, bytes]:
    """For every `step`-th PRONOM format: each signature's literals placed where the regex can
    have them (a BOF literal at its least offset, an EOF pattern's at the end), on a filler."""
    matcher = format_id._matcher()
    corpus: dict[str, bytes] = {}
    for i, (_, puid, signatures) in enumerate(matcher.formats):
        if i % step:
            continue
        for s, patterns in enumerate(signatures):
            head = bytearray(b" " * 2048)
            end = b""
            for position, regex, _needles, _window in patterns:
                facts = pattern_facts(position, regex.pattern)
                for lit, lo, _hi in facts.needles:
                    if position == "BOF" and lo + len(lit) <= len(head):
                        head[lo:lo + len(lit)] = lit
                    elif position != "BOF":
                        end += lit
                for anchor in facts.anchors:
                    if anchor.side == "B" and anchor.offset < len(head) and head[anchor.offset] not in anchor.allowed:
                        head[anchor.offset] = min(anchor.allowed)
            corpus[f"{puid}#{s}"] = bytes(head) + end
    return corpus


def test_the_matcher_finds_what_fido_finds_in_government_files(fido) -> None:
    found = assert_same(fido, government_corpus())
    # the corpus reaches the formats archives receive, or the comparison would prove little
    assert {"fmt/276", "fmt/17", "fmt/1129", "fmt/43", "fmt/11", "fmt/353", "x-fmt/263", "fmt/101",
            "fmt/3", "fmt/116", "fmt/566", "fmt/354", "fmt/479", "fmt/46", "fmt/50"} <= set(found), sorted(found)


def test_the_matcher_finds_what_fido_finds_in_files_built_from_signatures(fido) -> None:
    found = assert_same(fido, signature_corpus(step=6))
    assert len(found) > 100, f"only {len(found)} formats matched: the corpus misses what it is built for"


def test_identify_pronom_picks_the_lowest_puid_of_equals(tmp_path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf(["x"]))
    match = format_id.identify_pronom(path)
    assert match is not None and match.puid == "fmt/17" and match.version == "1.3" and "pdf" in match.extensions
