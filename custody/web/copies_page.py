"""副本 (copies of the archive): each configured copy (the primary and every `replicas:` entry), where
it is, when a night last caught it up (`replica-caught-up`), what its last fixity check found
(`fixity-checked` for that copy: objects missing, changed, unexpected) and the objects repaired in it
from another copy (`fixity-repaired`). Everything comes from the ledger's events: the page never
lists a store, so it costs the same for an archive of any size.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from custody.web import page_queries
from custody.web.auth import Session
from custody.web.guard import require
from custody.web.pages import _render, masker

router = APIRouter()
EVENTS_SHOWN = 500  # the newest catch-up, fixity and repair events the page reads


def _where(config: Any) -> str:
    if getattr(config, "kind", "") == "s3":
        endpoint = f"（{config.endpoint_url}）" if getattr(config, "endpoint_url", None) else ""
        return f"S3 存储桶 {config.bucket}{'/' + config.prefix if config.prefix else ''}{endpoint}"
    return f"文件系统 {getattr(config, 'path', '')}"


@router.get("/copies")
def copies(request: Request, session: Annotated[Session, Depends(require("copies"))]) -> Response:
    settings = request.app.state.settings
    configured = [("primary", "主存储库", settings.repository),
                  *((r.name, "副本", r.repository) for r in settings.replicas)]
    with request.app.state.ledger.read() as s:
        events = list(page_queries.recent_events(s, ["replica-caught-up", "replica-left-out", "fixity-checked",
                                                    "fixity-repaired"],
                                                 limit=EVENTS_SHOWN))
        s.expunge_all()
    mask = masker(request, session)
    rows = []
    for name, role, config in configured:
        caught = [e for e in events if e.kind == "replica-caught-up" and (e.payload or {}).get("replica") == name]
        checked = next((e for e in events if e.kind == "fixity-checked"
                        and (e.payload or {}).get("copy", "primary") == name), None)
        repaired = [e for e in events if e.kind == "fixity-repaired" and (e.payload or {}).get("copy") == name]
        left_out = next((e for e in events if e.kind == "replica-left-out"
                         and (e.payload or {}).get("replica") == name), None)
        rows.append({"name": name, "role": role, "where": _where(config),
                     "lock": getattr(config, "object_lock_mode", None), "caught": caught,
                     "caught_objects": sum(int((e.payload or {}).get("objects") or 0) for e in caught),
                     "checked": checked, "check": (checked.payload or {}) if checked else {},
                     "repaired": repaired, "left_out": left_out})
    repairs = [e for e in events if e.kind == "fixity-repaired"]
    catch_ups = [e for e in events if e.kind == "replica-caught-up"]
    return _render(request, "copies.html", rows=rows, repairs=repairs, catch_ups=catch_ups, mask=mask)
