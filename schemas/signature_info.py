"""签名信息 (signature information) of one document, as 元数据.xml records it: which electronic
signatures or seals (电子签名/电子印章) a document carries and what checking them found.

It lives in schemas/ beside metadata.py because the packager writes it and the 四性检测 reads it
back (真实性: a signature proves who issued the document and that it is unchanged). The state is
one of three, and "present, not verified" is never a kind of valid: a signature that could not be
judged (an unknown digest method, no certificate to verify it with) is recorded as such, with why,
so nobody reads it as checked.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum

from lxml import etree


class SignatureState(StrEnum):
    VALID = "有效"  # signed bytes intact, the value verifies, the certificate was valid when signing
    INVALID = "无效"  # a named check failed: a reference, dataHash, a signature, the validity, the coverage
    UNVERIFIED = "存在未验证"  # present but not judged (an unknown digest, no certificate): never valid


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    kind: str  # "PDF", "OFD Seal", "OFD Sign"
    state: SignatureState
    intact: bool | None = None  # PDF: the signed byte ranges hash to the signed digest; OFD: references match
    whole_file: bool | None = None  # PDF: the signature covers the whole file (no later revision)
    coverage: str | None = None  # PDF: pyHanko's coverage level, e.g. ENTIRE_FILE
    signer: str | None = None  # certificate subject (PDF) or provider (OFD)
    issuer: str | None = None
    signing_time: str | None = None
    timestamp: str | None = None  # the signature time-stamp token's time, when there is one
    method: str | None = None  # e.g. "RSA-with-SHA256", "SM2-with-SM3"
    trusted: bool | None = None  # signer certificate chains to a configured trust root
    references: int | None = None  # OFD: signed files checked
    seal: str | None = None  # OFD seal (电子印章): name, ID, type, validity, maker
    modification: str | None = None  # PDF: what changed after signing (pyHanko's modification level)
    note: str | None = None  # what was found, in words

    @property
    def counts_as_valid(self) -> bool:
        return self.state == SignatureState.VALID


# Element names in the XSD's order.
_TAGS = {
    "kind": "类型", "state": "状态", "intact": "签名内容完整", "whole_file": "覆盖整个文件", "coverage": "覆盖范围",
    "signer": "签名者", "issuer": "证书颁发者", "signing_time": "签名时间", "timestamp": "时间戳",
    "method": "签名算法", "trusted": "证书可信", "references": "引用文件数", "seal": "印章信息",
    "modification": "签名后修改", "note": "说明",
}
_BOOLS = frozenset({"intact", "whole_file", "trusted"})


def write_signature_info(parent: etree._Element, records: tuple[SignatureRecord, ...] | list[SignatureRecord]) -> None:
    """Append 签名信息 to a 文件 element (nothing when the document carries no signature)."""
    if not records:
        return
    info = etree.SubElement(parent, "签名信息", {"数量": str(len(records))})
    for i, r in enumerate(records, start=1):
        el = etree.SubElement(info, "签名", {"序号": str(i)})
        for f in fields(SignatureRecord):
            value = getattr(r, f.name)
            if value is None or value == "":
                continue
            text = ("true" if value else "false") if f.name in _BOOLS else str(value)
            etree.SubElement(el, _TAGS[f.name]).text = text


def read_signature_info(file_el: etree._Element) -> tuple[SignatureRecord, ...]:
    """The 签名信息 of a 文件 element, read tolerantly (an unknown state reads as INVALID)."""
    out = []
    for el in file_el.findall("签名信息/签名"):
        values: dict[str, object] = {}
        for f in fields(SignatureRecord):
            text = el.findtext(_TAGS[f.name])
            if text is None:
                continue
            text = text.strip()
            if f.name in _BOOLS:
                values[f.name] = text == "true"
            elif f.name == "references":
                values[f.name] = int(text) if text.isdigit() else None
            elif f.name == "state":
                values[f.name] = SignatureState(text) if text in SignatureState._value2member_map_ else \
                    SignatureState.INVALID
            else:
                values[f.name] = text
        values.setdefault("kind", "")
        values.setdefault("state", SignatureState.INVALID)
        out.append(SignatureRecord(**values))  # type: ignore[arg-type]
    return tuple(out)
