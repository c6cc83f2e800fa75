"""The error types more than one layer raises or catches, kept below all of them.

A connector raises `SourceUnavailable` or `DocumentUnavailable`; the packager (which streams the
bytes) and the night (which decides between "pending" and "quarantined") catch them. Defining them
here, beside `GuidangError`, is what lets `packager/` and `connectors/` never import each other.
"""

from __future__ import annotations

from schemas.findings import GuidangError


class SourceUnavailable(GuidangError):
    """The source could not be reached or answered wrongly after retries: transient, retry later."""


class DocumentUnavailable(GuidangError):
    """One document cannot be had from the source (404, missing file, empty BLOB): a fault of the
    matter, so it is quarantined (`Q-DOC-FETCH-FAILED`) with this message as the detail."""


class InvariantBroken(RuntimeError):
    """A state the code's own earlier steps rule out was reached: a bug in guidang, not bad input.

    Raised where a check must hold whether or not Python runs with -O (which strips `assert`), so
    the night stops on that matter with a message instead of going on with a wrong value. Not a
    `GuidangError` on purpose: the handlers that expect those (a clear message, exit 2) must not
    swallow a bug; it takes the path of any unplanned failure (quarantined as unexpected, traceback).
    """


__all__ = ["DocumentUnavailable", "GuidangError", "InvariantBroken", "SourceUnavailable"]
