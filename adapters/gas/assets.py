"""An asset's class, fixed by its first recorded reading (``docs/design/gas-network.md``, Asset class).

GasNetwork registers data loggers, not assets: an asset is the utility's own label under its logger, so the
class its logger first recorded it with is the one it keeps (as an env station's ST is its first record's,
``adapters.env.single.with_class``). The logger's state (``logger:<id>``) holds ``assets``, asset -> class;
a batch reading a known asset under another class is refused, naming the reading, so a logger cannot choose
per reading which quantities and alarm bands hold an asset (sixth attack, finding 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.abc import State, Step
from adapters.gas.errors import AssetClassMismatch


def with_asset_classes(
    step: Step, logger: State | None, logger_key: str, classes: Mapping[str, Sequence[Any]]
) -> Step:
    """``step`` (a batch's, which writes its logger's state) with the batch's new assets' classes pinned in
    the logger's state; a known asset under another class is ``ASSET_CLASS_MISMATCH``, naming the batch's
    first reading of it. ``classes``: the batch adapter's, asset -> [class, index of its first reading]."""
    pinned: Mapping[str, str] = logger.data.get("assets", {}) if logger is not None else {}
    for asset, (cls, index) in classes.items():  # in reading order: the first reading at fault is named
        known = pinned.get(asset)
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
    new = {asset: cls for asset, (cls, _) in classes.items() if asset not in pinned}
    written = step.writes.get(logger_key)
    if not new or written is None:
        return step
    data = {**written.data, "assets": {**pinned, **new}}
    return Step(prior=step.prior, writes={**step.writes, logger_key: State(written.status, data)})
