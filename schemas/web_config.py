"""`web:` in guidang.yaml: who may sign in to the bureau's console (`guidang web`) and what they see.

Only password hashes live in the file (argon2, made with `guidang web --hash-password`);
the key that signs session cookies is read from the environment variable `secret_key_env` names,
so neither a password nor the key is ever in the config or the repository.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# 档案局审计员 bureau auditor, 档案员 archivist (who also appraises: 鉴定小组), 分管领导 approver (approves an
# appraisal decided by others), 运维 operations.
Role = Literal["auditor", "archivist", "approver", "operations"]
ROLE_LABELS: dict[str, str] = {"auditor": "档案局审计员", "archivist": "档案员", "approver": "分管领导",
                               "operations": "运维"}


class WebUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="the sign-in name")
    role: Role = Field(description="auditor (档案局审计员), archivist (档案员), approver (分管领导, approves "
                       "appraisals) or operations (运维); decides which pages and downloads the user may open")
    password_hash: str = Field(description="argon2 ($argon2id$…) hash of the password, made "
                               "with `guidang web --hash-password`; never the password itself")

    @field_validator("password_hash")
    @classmethod
    def _is_a_hash(cls, v: str) -> str:
        if not v.startswith("$argon2"):
            raise ValueError("must be an argon2 hash (make one with `guidang web --hash-password`)")
        return v


class WebConfig(BaseModel):
    """The console's users, sessions and who sees personal data unmasked."""

    model_config = ConfigDict(extra="forbid")

    users: list[WebUser] = Field(min_length=1, description="who may sign in; usernames unique")
    session_minutes: int = Field(default=30, ge=1, le=24 * 60, description="a session ends this many minutes "
                                 "after its last request (checked by the server, not only by the cookie)")
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24, description="a session ends this many hours "
                                   "after sign-in however busy it is (an absolute lifetime beside the idle one)")
    signin_max_failures: int = Field(default=5, ge=2, le=100, description="wrong passwords for one user name "
                                     "before it is locked out for `signin_lockout_minutes` (an audit event)")
    signin_address_max_failures: int = Field(default=20, ge=2, le=1000, description="failed sign-ins from one "
                                             "address (whatever the user names) before that address is locked out")
    signin_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60, description="how long a lockout lasts; "
                                        "failures older than this are forgotten")
    secret_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of the environment "
                                "variable holding the session-signing key (at least 32 characters); the console "
                                "refuses to start without it")
    secure_cookies: bool = Field(default=False, description="mark the session cookie Secure; set it when the "
                                 "console is served over HTTPS (behind a reverse proxy)")
    unmasked_roles: list[Role] = Field(default_factory=lambda: ["archivist"], description="roles that see "
                                       "applicant names, ID numbers, credit codes and phones unmasked")

    @field_validator("users")
    @classmethod
    def _unique(cls, v: list[WebUser]) -> list[WebUser]:
        names = [u.username for u in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"usernames must be unique; repeated: {', '.join(dup)}")
        return v

    def user(self, username: str) -> WebUser | None:
        for u in self.users:
            if u.username == username:
                return u
        return None
