"""An asset's class, fixed by its first recorded reading (``docs/design/gas-network.md``, Asset class).

GasNetwork registers data loggers, not assets: an asset is the utility's own label under its logger, so the
class its logger first recorded it with is the one it keeps (as an env station's ST is its first record's,
``adapters.env.single.with_class``). The logger's state (``logger:<id>``) holds ``assets``, asset -> class;
a batch reading a known asset under another class is refused, naming the reading, so a logger cannot choose
per reading which quantities and alarm bands hold an asset (sixth attack, finding 5). Assets are compared
by ``payload.asset_key`` (case, '-' or '_'), so a variant spelling names the recorded asset (seventh attack,
finding 4); a state written before kept ids as spelled, so its ids are keyed on reading, the first recorded
spelling's class holding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.abc import State, Step
from adapters.gas.errors import AssetClassMismatch
from adapters.gas.payload import asset_key


def with_asset_classes(
    step: Step, logger: State | None, logger_key: str, classes: Mapping[str, Sequence[Any]]
) -> Step:
    """``step`` (a batch's, which writes its logger's state) with the batch's new assets' classes pinned in
    the logger's state; a known asset under another class is ``ASSET_CLASS_MISMATCH``, naming the batch's
    first reading of it as spelled there. ``classes``: the batch adapter's, asset key -> [class, index and id
    of its first reading] (records adapted before the key: asset -> [class, index])."""
    stored: Mapping[str, str] = logger.data.get("assets", {}) if logger is not None else {}
    pinned: dict[str, str] = {}
    for asset, cls in stored.items():  # in recording order: the first class of an asset holds
        pinned.setdefault(asset_key(asset), cls)
    for key, (cls, index, *spelled) in classes.items():  # in reading order: the first at fault is named
        asset = spelled[0] if spelled else key
        known = pinned.get(asset_key(key))
        if known is not None and known != cls:
            raise AssetClassMismatch(
                f"reading {index} reads asset {asset!r} as a {cls}; its logger recorded it as a {known}",
                details={
                    "index": index,
                    "field": "class",
                    "asset": asset,
                    "value": cls,
                    "asset_class": known,
                },
            )
    new = {key: cls for key, (cls, *_) in classes.items() if asset_key(key) not in pinned}
    written = step.writes.get(logger_key)
    if not new or written is None:
        return step
    data = {**written.data, "assets": {**stored, **new}}
    return Step(prior=step.prior, writes={**step.writes, logger_key: State(written.status, data)})
