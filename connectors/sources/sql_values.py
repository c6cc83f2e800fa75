"""Every value a self-built system hands back, read strictly and one row at a time.

The connector asks the driver for text as raw bytes (see `raw_text` in `sql`) and decodes it here,
per value, with the source's declared `encoding` and then its `fallback_encoding`: a column that
an old client filled with GBK among UTF-8 rows then fails one row, named, instead of the driver
failing the whole query. Dates are parsed with fixed-width digit fields and must fall in a
plausible range: `strptime` reads `1796263200` under `%Y%m%d%H%M%S` as the year 1796, and a
year-0202 办结时间 stops appraisal for the whole source. A value that cannot be read raises
`BadValue`, whose message shows the raw value escaped, so that the department can find the row.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event

from schemas.masking import escape_controls

# Formats besides ISO 8601, as regular expressions with named fields. Digits run together
# (`%Y%m%d%H%M%S`) only in their full width; with separators a month, day or hour may have one
# digit (2024/1/5 9:03), which is unambiguous.
_FORMATS = tuple(re.compile(p) for p in (
    r"(?P<Y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})(?: (?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
    r"(?P<Y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?: (?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
    r"(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?",
    r"(?P<Y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日(?: ?(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?",
))
_SHOWN = 80  # characters of a raw value shown in a finding


class BadValue(ValueError):
    """A source value that cannot be read; the message names the fault and shows the raw value."""


def shown(value: object) -> str:
    """A raw value as a finding shows it: bytes as escapes (b'\\xd5\\xc5'), text with its control
    characters escaped, both cut to a length a log line can carry."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = repr(bytes(value)[:_SHOWN])
        return text + ("…" if len(bytes(value)) > _SHOWN else "")
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = escape_controls(str(value))
    return repr(text[:_SHOWN]) + ("…" if len(text) > _SHOWN else "")


def check_encoding(name: str) -> str:
    """The codec's canonical name; LookupError for a name Python does not know."""
    return codecs.lookup(name).name


class ValueReader:
    """Decodes and parses one source's values: `text` and `datetime` raise BadValue per value."""

    def __init__(self, encoding: str, fallback: str | None, earliest_year: int, tz: ZoneInfo) -> None:
        self.encodings = tuple(dict.fromkeys(e for e in (encoding, fallback) if e))
        self.earliest_year = earliest_year
        self.tz = tz

    def text(self, value: object) -> str | None:
        """A text value stripped, None when empty; bytes decoded strictly by the declared encodings."""
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            for encoding in self.encodings:
                try:
                    return raw.decode(encoding).strip() or None
                except UnicodeDecodeError:
                    continue
            raise BadValue(f"cannot be decoded as {' or '.join(self.encodings)}: {shown(raw)}")
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return str(int(value))
        return str(value).strip() or None

    def datetime(self, value: object) -> datetime | None:
        """Naive values are the source's local time; a date before `earliest_year` is refused."""
        if isinstance(value, bytes | bytearray | memoryview):
            value = self.text(value)
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            parsed = parse_datetime(value.strip())
        else:
            raise BadValue(f"not a date-time: {shown(value)} (a {type(value).__name__})")
        if parsed.year < self.earliest_year:
            raise BadValue(f"implausible date-time {shown(value)}: before {self.earliest_year} "
                           f"(the source's earliest_year)")
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=self.tz)

    def json(self, value: object) -> object:
        """A value as the quarantine record keeps it: text decoded, or escaped when it cannot be."""
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                return self.text(value)
            except BadValue:
                return shown(value)
        return str(value)


def parse_datetime(value: str) -> datetime:
    """ISO 8601 (which is fixed-width), else one of `_FORMATS` matched in full."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    for pattern in _FORMATS:
        m = pattern.fullmatch(value)
        if m is None:
            continue
        f = {k: int(v) for k, v in m.groupdict().items() if v is not None}
        try:
            return datetime(f["Y"], f["m"], f["d"], f.get("H", 0), f.get("M", 0), f.get("S", 0))
        except ValueError as exc:
            raise BadValue(f"not a date-time: {shown(value)} ({exc})") from exc
    raise BadValue(f"not a date-time: {shown(value)}")


def raw_text(engine: Engine) -> None:
    """Have every connection of `engine` hand back text columns as the bytes the database holds,
    so that `ValueReader` decodes them per value: left to the driver, one undecodable value fails
    the whole query (and with it the source).

    SQLite: `text_factory = bytes`. PostgreSQL (psycopg2): the BYTES typecaster for the text types.
    MariaDB/MySQL (PyMySQL): `character_set_results = binary`, under which the server sends each
    column in the character set it is stored in, unconverted (a latin1 column holding GBK bytes,
    as old clients leave them, arrives as those bytes). The listener runs after the dialect has
    initialised the connection, which still reads its settings as text."""
    backend = engine.dialect.name

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if backend == "sqlite":
            dbapi_connection.text_factory = bytes
        elif backend == "postgresql" and engine.dialect.driver == "psycopg2":
            import psycopg2.extensions as ext

            ext.register_type(ext.BYTES, dbapi_connection)
            ext.register_type(ext.BYTESARRAY, dbapi_connection)
            # date, timestamp, timestamptz as their ISO text: psycopg2's own conversion fails the
            # whole query on one BC date ("year -44 is out of range")
            ext.register_type(ext.new_type((1082, 1114, 1184), "GUIDANG_TIME_TEXT", lambda v, _c: v),
                              dbapi_connection)
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET DateStyle = 'ISO, YMD'")
            finally:
                cursor.close()
        elif backend in ("mysql", "mariadb"):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET character_set_results = binary")
            finally:
                cursor.close()

    event.listen(engine, "connect", on_connect)
