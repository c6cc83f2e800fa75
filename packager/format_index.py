"""Which PRONOM signatures a file could possibly match, decided from a few of its bytes.

FIDO tries every one of PRONOM's ~2,300 formats on every file; most of that work is for
signatures that fail at their first byte, but ~900 formats have a signature whose first byte is
not a literal, and a handful of patterns (`\\A.{32768,70468}...CD001`, an EOF pattern searched
over 128 KiB) are slow on every file. This module reads each pattern's regex (with Python's own
regex parser) and derives *necessary* conditions for it to match, never sufficient ones:

- `anchor`: the byte at a fixed offset from the start (a BOF pattern, matched at offset 0) or from
  the end (an EOF pattern that ends in `\\Z`) must lie in a set of bytes. The most selective one of
  a signature indexes its format: a file is tried only against formats one of whose signatures'
  anchor its bytes satisfy (and those with an unanchored signature, in FIDO's order);
- `needle`: a literal run the match must contain; a pattern whose needle is not in its buffer
  cannot match, and `bytes.__contains__` answers that far faster than a backtracking search;
- `window`: a pattern whose match is at most W bytes long: a BOF one lies within the first W
  bytes (its needle is looked for there only); an EOF one ending in `\\Z` (and anchored nowhere
  else) is searched over the last W bytes only: every match ends at the end, so it starts within them.

Each condition only ever rules out a pattern that the regex itself would reject; whatever passes is
still matched by the regex, so the result is FIDO's (tests/test_format_id.py compares them file by
file). A construct the analysis does not understand yields no condition (the pattern is tried).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

try:  # Python >= 3.11 names them privately; the parser is the one `re` itself compiles with
    from re import _constants as _c
    from re import _parser as _p
except ImportError:  # pragma: no cover - Python < 3.11 is not supported anyway
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

ALL_BYTES = frozenset(range(256))
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}
_CASE_FLAGS = _c.SRE_FLAG_IGNORECASE | _c.SRE_FLAG_LOCALE
MIN_NEEDLE = 3  # a shorter run rules out too little to pay for the scan


@dataclass(frozen=True, slots=True)
class Anchor:
    """The byte at `offset` from the start ("B") or from the end ("E", 0 = the last byte) is one of `allowed`."""

    side: str
    offset: int
    allowed: frozenset[int]


@dataclass(frozen=True, slots=True)
class PatternFacts:
    anchors: tuple[Anchor, ...] = ()
    needles: tuple[Run, ...] = ()  # literals the match contains, where it can start them
    # the longest match: a BOF match lies within the first `window` bytes, an EOF one (ending in
    # \\Z, nothing else anchored) within the last
    window: int | None = None


class _Stop(Exception):
    """The walk met something of unknown width or meaning: no condition past this point."""


def _charset(items: list) -> frozenset[int] | None:
    """The bytes an IN item admits, None when it holds a category (\\d, \\w ...) it does not model."""
    allowed: set[int] = set()
    negate = False
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            allowed.add(av)
        elif op is _c.RANGE:
            allowed.update(range(av[0], av[1] + 1))
        else:
            return None
    return ALL_BYTES - allowed if negate else frozenset(allowed)


def _one_byte(op: object, av: object) -> frozenset[int] | None:
    if op is _c.LITERAL:
        return frozenset((av,))  # type: ignore[arg-type]
    if op is _c.NOT_LITERAL:
        return ALL_BYTES - {av}
    if op is _c.IN:
        return _charset(av)  # type: ignore[arg-type]
    return None


def _walk(items: list, offset: int, out: list[tuple[int, frozenset[int]]], reverse: bool) -> int:
    """Constraints (offset, allowed bytes) over the fixed-width stretch of `items`, read from the
    start or, reversed, from the end; returns the offset after the stretch, raises _Stop where it ends."""
    for op, av in (reversed(items) if reverse else items):
        if op is _c.AT:
            if av is (_c.AT_END_STRING if reverse else _c.AT_BEGINNING_STRING):
                continue
            raise _Stop
        if op in (_c.LITERAL, _c.NOT_LITERAL, _c.IN):
            allowed = _one_byte(op, av)
            if allowed is not None:
                out.append((offset, allowed))
            offset += 1
        elif op is _c.ANY:
            offset += 1
        elif op in _REPEATS:
            lo, hi, sub = av
            low, high = sub.getwidth()
            if lo == hi and low == high:
                if lo == 1:
                    offset = _walk(sub.data, offset, out, reverse)
                else:
                    offset += lo * low
                continue
            if lo >= 1:  # the first repetition starts here, whatever follows
                with contextlib.suppress(_Stop):
                    _walk(sub.data, offset, out, reverse)
            raise _Stop
        elif op is _c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if add_flags & _CASE_FLAGS:
                raise _Stop
            offset = _walk(sub.data, offset, out, reverse)
        elif op is _c.BRANCH:
            _, alternatives = av
            firsts: list[frozenset[int]] = []
            for alt in alternatives:
                found: list[tuple[int, frozenset[int]]] = []
                with contextlib.suppress(_Stop):
                    _walk(alt.data, offset, found, reverse)
                here = [a for o, a in found if o == offset]
                firsts.append(here[0] if here else ALL_BYTES)
            union = frozenset().union(*firsts)
            if union != ALL_BYTES:
                out.append((offset, union))
            widths = {alt.getwidth() for alt in alternatives}
            if len(widths) != 1 or next(iter(widths))[0] != next(iter(widths))[1]:
                raise _Stop
            offset += next(iter(widths))[0]
        else:
            raise _Stop
    return offset


Run = tuple[bytes, int, int | None]  # a literal, and the least and most offset it can start at (None: unbounded)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _literal_runs(items: list, start: tuple[int, int | None], runs: list[Run]) -> tuple[int, int | None]:
    """Runs of literal bytes every match contains, each with the offsets (from the match's start)
    it can begin at; returns the offsets after `items`. A run breaks at anything but a literal."""
    lo, hi = start
    current = bytearray()
    at: tuple[int, int | None] = start

    def flush() -> None:
        if current:
            runs.append((bytes(current), at[0], at[1]))
            current.clear()

    for op, av in items:
        if op is _c.LITERAL:
            if not current:
                at = (lo, hi)
            current.append(av)
            lo, hi = lo + 1, _add(hi, 1)
            continue
        if op is _c.SUBPATTERN and not (av[1] & _CASE_FLAGS):
            flush()
            lo, hi = _literal_runs(av[3].data, (lo, hi), runs)
            continue
        flush()
        if op in _REPEATS and av[0] >= 1:
            _literal_runs(av[2].data, (lo, hi), runs)  # the first repetition begins here
        width = _p.SubPattern(_p.State(), [(op, av)]).getwidth()
        lo, hi = lo + width[0], (None if width[1] >= _c.MAXREPEAT else _add(hi, width[1]))
    flush()
    return lo, hi


def _has_only_final_end(items: list) -> bool:
    """True when the only assertion is the final \\Z: nothing else looks at where the string starts."""
    stack = [(list(items), True)]
    while stack:
        seq, top = stack.pop()
        for i, (op, av) in enumerate(seq):
            if op is _c.AT:
                if not (top and i == len(seq) - 1 and av is _c.AT_END_STRING):
                    return False
            elif op in (_c.ASSERT, _c.ASSERT_NOT, _c.GROUPREF, _c.GROUPREF_EXISTS):
                return False
            elif op in _REPEATS:
                stack.append((list(av[2].data), False))
            elif op is _c.SUBPATTERN:
                stack.append((list(av[3].data), False))
            elif op is _c.BRANCH:
                stack.extend((list(alt.data), False) for alt in av[1])
    return True


def pattern_facts(position: str, regex: bytes) -> PatternFacts:
    """The necessary conditions of one FIDO pattern (`position` BOF, EOF, VAR or IFB)."""
    try:
        parsed = _p.parse(regex)
    except Exception:  # FIDO compiled it, so this does not happen; no condition if it does
        return PatternFacts()
    if parsed.state.flags & _CASE_FLAGS:
        return PatternFacts()
    items = list(parsed.data)
    anchors: list[Anchor] = []
    ends_at_end = bool(items) and items[-1] == (_c.AT, _c.AT_END_STRING)
    if position in ("BOF", "EOF") and (position == "BOF" or ends_at_end):
        found: list[tuple[int, frozenset[int]]] = []
        with contextlib.suppress(_Stop):
            _walk(items, 0, found, reverse=position == "EOF")
        side = "B" if position == "BOF" else "E"
        anchors = [Anchor(side, o, a) for o, a in found if a != ALL_BYTES]
    runs: list[Run] = []
    _literal_runs(items, (0, 0), runs)
    needles: list[Run] = []
    if position == "BOF":  # where the match starts is known: a run within a few bytes is cheap to check
        needles = sorted((r for r in runs if r[2] is not None and r[2] - r[1] < 4096),
                         key=lambda r: (r[2] - r[1], -len(r[0])))[:2]  # type: ignore[operator]
    longest = max(runs, key=lambda r: len(r[0]), default=None)
    if longest is not None and len(longest[0]) >= MIN_NEEDLE and longest not in needles:
        needles.append(longest if position == "BOF" else (longest[0], 0, None))
    window = None
    high = parsed.getwidth()[1]
    if high < _c.MAXREPEAT and (position == "BOF" or (position == "EOF" and ends_at_end
                                                     and _has_only_final_end(items))):
        window = high
    return PatternFacts(tuple(anchors), tuple(needles), window)


def best_anchor(facts: list[PatternFacts]) -> Anchor | None:
    """The most selective anchor of a signature (all its patterns must match, so any one will do)."""
    anchors = [a for f in facts for a in f.anchors]
    if not anchors:
        return None
    return min(anchors, key=lambda a: (len(a.allowed), a.offset, a.side))


def anchor_holds(anchor: Anchor, head: bytes, tail: bytes) -> bool:
    if anchor.side == "B":
        return anchor.offset < len(head) and head[anchor.offset] in anchor.allowed
    return anchor.offset < len(tail) and tail[-1 - anchor.offset] in anchor.allowed
