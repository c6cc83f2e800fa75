"""The base every section of `guidang.yaml` builds on, and the checks several sections share."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict


def known_zone(name: str) -> str:
    """Refuse a zone the tz database does not know when the config loads, not when a command
    first formats a time with it (a traceback in `retention due` or `check`)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai") from exc
    return name


ZoneName = Annotated[str, AfterValidator(known_zone)]


class ConfigModel(BaseModel):
    """A section of the configuration: an unknown key is a typo, refused with its name."""

    model_config = ConfigDict(extra="forbid")
