"""Invented people and firms for the demo sources: names, 居民身份证号 and 统一社会信用代码.

Each number is well formed (its check character is right) and drawn from the caller's seeded
`random.Random`, so a source stays byte-identical for a seed. The pools of names belong to each
source (the systems serve different districts' people), which is why they are parameters here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # the 31 characters of a 统一社会信用代码 (GB 32100)


def person_name(rng: random.Random, surnames: Sequence[str], given: Sequence[str]) -> str:
    return rng.choice(surnames) + rng.choice(given)


def id_check_digit(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of a resident identity number."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def resident_id(rng: random.Random, *, born_from: date, span_days: int, areas: Sequence[str]) -> str:
    """A 居民身份证号 of someone born within `span_days` of `born_from` in one of `areas` (drawn only
    when there is a choice, so that a single area costs the generator no draw)."""
    born = born_from + timedelta(days=rng.randrange(span_days))
    area = rng.choice(areas) if len(areas) > 1 else areas[0]
    first17 = f"{area}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_digit(first17)


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character of a 统一社会信用代码."""
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(CODE_CHARS.index(c) * w for c, w in zip(first17, weights, strict=True))
    return CODE_CHARS[(31 - total % 31) % 31]


def uscc(rng: random.Random, area: str) -> str:
    """A 统一社会信用代码 of a firm (91) registered in `area`, both check characters right."""
    # 主体标识码: an 8-character organisation code plus its GB 11714 check character.
    body = "".join(rng.choice(CODE_CHARS) for _ in range(8))
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body]
    c9 = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    org = body + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))
    first17 = "91" + area + org
    return first17 + uscc_check_char(first17)
