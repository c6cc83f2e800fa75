"""At the start of a night: each replica (`replicas:` in guidang.yaml) that an earlier night could not
write is caught up from the primary, and the catch-up is an event of the ledger (`replica-caught-up`),
so the bureau sees when a copy was behind and what it received."""

from __future__ import annotations

from connectors.repositories import ReplicatedRepository, RepositoryError, catch_up
from ledger.chain import append_event
from night.context import RunContext


def catch_up_replicas(ctx: RunContext) -> dict[str, int]:
    """{replica: objects copied}; a replica that fails now is left out of tonight's writes."""
    repository = ctx.repository
    if not isinstance(repository, ReplicatedRepository):
        return {}
    copied: dict[str, int] = {}
    for name, replica in list(repository.replicas.items()):
        try:
            keys = catch_up(repository.primary, name, replica)
        except (RepositoryError, OSError) as exc:  # the copy, or the spool beside it: left out tonight
            repository.leave_out(name, exc if isinstance(exc, RepositoryError) else RepositoryError(str(exc)))
            continue
        if keys:
            copied[name] = len(keys)
            with ctx.ledger.transaction() as s:
                append_event(s, "replica-caught-up", run_id=ctx.run_id,
                             payload={"replica": name, "objects": len(keys), "keys": keys[:100]})
    return copied
