"""The environmental domain's panel on the supervision dashboard: exceedances per station (readings of
batches outside their station class's limit, ``alerts.py``), each number opening the alerts behind it with
the batch record that holds the reading."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from adapters.abc import Panel, PanelCount, PanelItem, SupervisionContext
from adapters.env.routes import station_exceedances

_SCAN = 500  # batch states read at a time
_SIDE = {"min": "<", "max": ">", None: ">"}  # alerts kept before ``bound`` existed were over a maximum


def exceedance_counts(ctx: SupervisionContext, since: str, until: str) -> list[PanelCount]:
    """Exceedances dated in [since, until) per station, over the batches the reader may read."""
    per_station: Counter[str] = Counter()
    start = "batch:"
    while found := ctx.states(start, "batch;", _SCAN):  # ";" follows ":": past the last batch key
        for key, state in found:
            data = state.data
            if data["period_end"] <= since or data["period_start"] >= until:
                continue
            over = [
                a
                for a in data.get("alerts", [])
                if a["type"] == "exceedance" and since <= a["data_time"] < until
            ]
            if over and ctx.visible(data["record"]):
                per_station[key.split(":", 2)[1]] += len(over)  # batch:<MN>:<period_end>
        start = found[-1][0] + "~"  # "~" sorts after every character of a key
    return [PanelCount(mn, n) for mn, n in sorted(per_station.items(), key=lambda kv: (-kv[1], kv[0]))]


def exceedance_items(
    ctx: SupervisionContext, key: str, since: str, until: str, after: str | None, limit: int
) -> tuple[Sequence[PanelItem], str | None]:
    """The station's exceedances in [since, until), each naming the batch record of its reading."""
    page = station_exceedances(ctx, since, until, after, str(limit), mn=key)
    items = [
        PanelItem(
            record_id=a.batch,
            at=a.data_time,
            org=a.bundle["record"]["org"],
            subject=a.bundle["record"]["subject"],
            detail=f"#{a.index} {a.code} {a.value:g} {_SIDE[a.bound]} {a.limit:g} ({a.averaging})",
        )
        for a in page.items
    ]
    return items, page.next_cursor


PANELS = (
    Panel(
        name="exceedances",
        title={"zh": "各监测站超标次数", "en": "Environmental exceedances per station"},
        key_title={"zh": "监测站（MN）", "en": "Station (MN)"},
        counts=exceedance_counts,
        items=exceedance_items,
    ),
)
