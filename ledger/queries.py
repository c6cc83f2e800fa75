"""The questions the flows and the commands ask the ledger, each written once.

Functions take a session and return rows or plain values; the caller owns the session and the
transaction (STYLE habit 8). Nothing in `flows/` writes a `select()` of its own: when a stage or a
command needs to know something new, the query goes here, beside the others, so the next engineer
finds every read of the ledger in one place. (Writes that change state live in `ledger/store.py`.)
"""

from __future__ import annotations

# ---------------------------------------------------------------- the nightly run (flows/)


# ---------------------------------------------------------------- the commands (flows/cli/)
