"""The batch mechanism of sensor domains (``docs/design/sensor-batches.md``): a source (a monitoring station,
a gas operator's data logger) signs once over the SM3 Merkle root of N items; the batch is one log leaf,
its root is anchored per source and period, and each item verifies alone from its bundle. A domain gives
its :class:`BatchSpec` and how one item is checked; ``intake`` adapts, rules and anchors batches, ``reads``
serves their items and alerts."""

from adapters.batch.spec import BatchSpec, Item

__all__ = ["BatchSpec", "Item"]
