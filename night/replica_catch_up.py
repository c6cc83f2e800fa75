"""At the start of a night: each replica (`replicas:` in guidang.yaml) that an earlier night could not
write is caught up from the primary, and the catch-up is an event of the ledger (`replica-caught-up`),
so the bureau sees when a copy was behind and what it received. Which copies may be behind is the
ledger's word (ledger/replica_state.py): a copy that kept up is not listed again; at the night's
close, the copies it left out are recorded (night/context.close_run)."""

from __future__ import annotations

from connectors.repositories import ReplicatedRepository, RepositoryError, catch_up
from ledger.chain import append_event
from ledger.replica_state import CAUGHT_UP, copies_to_catch_up
from night.context import RunContext


def catch_up_replicas(ctx: RunContext) -> dict[str, int]:
    """{replica: objects copied}; a replica that fails now is left out of tonight's writes."""
    repository = ctx.repository
    if not isinstance(repository, ReplicatedRepository):
        return {}
    copied: dict[str, int] = {}
    with ctx.ledger.read() as s:
        wanted = set(copies_to_catch_up(s, sorted(repository.replicas), ctx.run_id))
    for name, replica in list(repository.replicas.items()):
        if name not in wanted:
            continue
        try:
            keys = catch_up(repository.primary, name, replica)
        except (RepositoryError, OSError) as exc:  # the copy, or the spool beside it: left out tonight
            repository.leave_out(name, exc if isinstance(exc, RepositoryError) else RepositoryError(str(exc)))
            continue
        copied[name] = len(keys)
        with ctx.ledger.transaction() as s:  # also when nothing was missing: the copy is whole from here
            append_event(s, CAUGHT_UP, run_id=ctx.run_id,
                         payload={"replica": name, "objects": len(keys), "keys": keys[:100]})
    return copied

