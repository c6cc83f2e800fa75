"""Signed PDFs made with pyHanko under a certificate the test creates, and a ClamAV signature
database holding only the EICAR test signature (no download, no freshclam).

The clamd and clamscan the tests run are the real Debian programs (.ci/run installs them); a test
skips without them only when GUIDANG_REQUIRE_SERVICES is not set.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# The EICAR anti-virus test file (not a virus: every scanner is meant to report it).
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Guidang.Test.EICAR"


def require_clamav(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if Path(f"/usr/sbin/{program}").exists() else None)
    if path is None:
        if os.environ.get("GUIDANG_REQUIRE_SERVICES"):
            pytest.fail(f"{program} is required (GUIDANG_REQUIRE_SERVICES is set): "
                        "apt-get install clamav clamav-daemon")
        pytest.skip(f"{program} is not installed")
    return path


def eicar_database(folder: Path) -> Path:
    """A signature database with one body signature: the EICAR string anywhere in a file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "guidang-test.ndb").write_text(f"{EICAR_NAME}:0:*:{EICAR.hex()}\n")
    return folder


@contextmanager
def running_clamd(tmp: Path) -> Iterator[Path]:
    """A clamd of our own on a unix socket in `tmp`, with the EICAR database; stopped afterwards."""
    clamd = require_clamav("clamd")
    db = eicar_database(tmp / "db")
    sock = tmp / "clamd.sock"
    conf = tmp / "clamd.conf"
    conf.write_text(f"DatabaseDirectory {db}\nLocalSocket {sock}\nForeground yes\nLogFile {tmp / 'clamd.log'}\n"
                    f"PidFile {tmp / 'clamd.pid'}\nTemporaryDirectory {tmp}\nStreamMaxLength 100M\n")
    proc = subprocess.Popen([clamd, "--config-file", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (tmp / "clamd.log").read_text() if (tmp / "clamd.log").exists() else ""
                raise RuntimeError(f"clamd did not start: {log[-500:]}")
            time.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def make_certificate(common_name: str = "示例市市场监督管理局 电子签名", *, tsa: bool = False):
    """A self-signed certificate and key (asn1crypto objects, as pyHanko takes them)."""
    from asn1crypto import keys
    from asn1crypto import x509 as ax509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "示例市人民政府"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True))
    if tsa:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    return ax509.Certificate.load(der), keys.PrivateKeyInfo.load(pkcs8), cert.public_bytes(serialization.Encoding.PEM)


def sign_pdf(data: bytes, cert, key, *, timestamp: tuple | None = None, field: str = "Signature1") -> bytes:
    """`data` signed by `cert` (an incremental update, as every signing tool writes it)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers, timestamps
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(signing_cert=cert, signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs([cert]))
    stamper = timestamps.DummyTimeStamper(tsa_cert=timestamp[0], tsa_key=timestamp[1]) if timestamp else None
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)),
                           signers.PdfSignatureMetadata(field_name=field), signer=signer, timestamper=stamper)
    return out.getvalue()


def append_revision(data: bytes) -> bytes:
    """A later incremental update after the signature (the catalogue changed), as an editor writes."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(data))
    w.root[generic.NameObject("/Lang")] = generic.TextStringObject("zh-CN")
    w.update_root()
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()
