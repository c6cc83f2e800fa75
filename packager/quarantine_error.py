"""The packager's one error: the matter goes to quarantine, with every reason found."""

from __future__ import annotations

from schemas.findings import Finding, GuidangError


class QuarantineError(GuidangError):
    """A matter cannot be packaged as it is. `findings` holds every problem found (codes from
    schemas/codes/quarantine.yaml, plus DA/T 70 item findings after Q-CHECK-FAILED); the message
    names the matter and never carries an unmasked identity number."""

    def __init__(self, matter_key: str, findings: list[Finding]) -> None:
        codes = sorted({f.code for f in findings})
        lines = "\n".join(f"  {f}" for f in findings)
        super().__init__(f"matter {matter_key} quarantined ({', '.join(codes)}):\n{lines}", findings)
        self.matter_key = matter_key

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}
