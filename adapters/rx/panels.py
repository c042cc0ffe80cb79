"""The prescription domain's panel on the supervision dashboard: trace-code reuse (dispenses refused with
TRACE_CODE_REUSED: a box handed over before, 回流药) per pharmacy. The refused dispense is never logged;
behind each refusal stands the dispense that handed the box over first, which only supervisors see here
(the refusal itself names the code, never that dispense)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from adapters.abc import Panel, PanelCount, PanelItem, Refusal, SupervisionContext
from adapters.errors import QueryInvalid
from adapters.rx.domain import code_key
from adapters.rx.errors import TraceCodeReused
from adapters.rx.trace_codes import digest


def _reuses(ctx: SupervisionContext, since: str, until: str) -> list[Refusal]:
    return [r for r in ctx.refusals(TraceCodeReused.code) if since <= r.at < until]


def reuse_counts(ctx: SupervisionContext, since: str, until: str) -> list[PanelCount]:
    """Refused reuses of a box's code in [since, until), per pharmacy that tried."""
    per_org = Counter(r.org for r in _reuses(ctx, since, until))
    return [PanelCount(org, n) for org, n in sorted(per_org.items(), key=lambda kv: (-kv[1], kv[0]))]


def reuse_items(
    ctx: SupervisionContext, key: str, since: str, until: str, after: str | None, limit: int
) -> tuple[Sequence[PanelItem], str | None]:
    """The pharmacy's refused reuses, oldest first, each with the dispense that handed the box over
    (None when this gateway holds none: the chain's, from another gateway)."""
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise QueryInvalid("after must be a next_cursor of this panel", details={"field": "after"})
    first = int(after or 0)
    rows = [r for r in _reuses(ctx, since, until) if r.org == key and r.seq > first]
    page = rows[:limit]
    items = []
    for r in page:
        code = r.details.get("code")
        held = ctx.state(code_key(digest(code))) if isinstance(code, str) and code.isascii() else None
        first_dispense = held.data.get("record") if held is not None else None
        items.append(
            PanelItem(
                record_id=first_dispense if first_dispense and ctx.visible(first_dispense) else None,
                at=r.at,
                org=r.org,
                subject=r.subject,
                detail=f"{r.kind} {code}",
            )
        )
    return items, str(page[-1].seq) if len(rows) > limit else None


PANELS = (
    Panel(
        name="trace_reuse",
        title={"zh": "追溯码重复使用（按药店）", "en": "Trace-code reuse (by pharmacy)"},
        key_title={"zh": "药店（机构）", "en": "Pharmacy (organisation)"},
        counts=reuse_counts,
        items=reuse_items,
    ),
)
