"""Errors of batch records (a sensor domain's ``<domain>.batch``), shared by every domain that signs many
items once: each names the item's ``index`` where one item is at fault."""

from __future__ import annotations

from provenance.errors import NotFound, PayloadInvalid


class BatchTooLarge(PayloadInvalid):
    """A batch of more items than the domain's bound (its workflow's ``max_batch``, default 10,000)."""

    code = "BATCH_TOO_LARGE"
    http_status = 413


class BatchRootMismatch(PayloadInvalid):
    """The batch's signed Merkle root (or count) is not that of the items it carries."""

    code = "BATCH_ROOT_MISMATCH"


class ReadingDuplicate(PayloadInvalid):
    """Two items with the same identity (a domain's: HJ 212's MN, CN and DataTime; a gas asset and time)."""

    code = "READING_DUPLICATE"


class ReadingOutOfPeriod(PayloadInvalid):
    """An item dated outside its batch's period [period_start, period_end)."""

    code = "READING_OUT_OF_PERIOD"


class BatchPeriodInvalid(PayloadInvalid):
    """A batch period that is empty, not in whole UTC seconds, or ends beyond the chain's clock by more than
    the anchoring contract's ``MAX_CLOCK_LEAD`` (one hour): the anchor could never go on chain."""

    code = "BATCH_PERIOD_INVALID"


class BatchPeriodInFuture(BatchPeriodInvalid):
    """A batch period ending later than the gateway's clock allows (its ``max_clock_skew``): a batch covers
    readings already taken, and a period ending ahead would hold back the source's next batches until then
    (periods only move forward)."""

    code = "BATCH_PERIOD_IN_FUTURE"


class BatchPeriodOverlap(PayloadInvalid):
    """A batch period starting before the end of the source's last batch. Periods only move forward (as in
    the anchoring contract), so an item of an earlier batch can never come again in a later one."""

    code = "BATCH_PERIOD_OVERLAP"
    http_status = 409


class ReadingNotFound(NotFound):
    """No such item, or one of a batch whose payload this reader may not read (the same answer)."""

    code = "READING_NOT_FOUND"
