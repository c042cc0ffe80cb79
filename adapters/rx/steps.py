"""Payloads of the prescription's later steps: ``rx.review`` (a licensed pharmacist's 审方) and ``rx.settle``
(医保's settlement of the dispense). Small JSON documents, not FHIR resources: each names the prescription,
and the contract, not the document, holds the state."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from adapters._common import (
    ID_PATTERN,
    STRICT,
    check_instant,
    past_instant,
    validate_model,
)
from adapters.abc import AdaptContext
from adapters.rx.errors import RxAmountInvalid

# Yuan with exactly two decimals (分), under a million yuan: a settlement amount as 医保 lists it for one
# prescription's dispense (more is a typo or an attack on whoever sums them; docs/design/rx-chain.md).
_YUAN = re.compile(r"(0|[1-9][0-9]{0,5})\.[0-9]{2}")


class RxReview(BaseModel):
    """Payload of ``rx.review``: approve or reject an issued prescription, with a reason."""

    model_config = STRICT

    rx_id: Annotated[str, Field(pattern=ID_PATTERN)]
    decision: Literal["approved", "rejected"]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    reviewed_at: Annotated[str, AfterValidator(check_instant)]


class RxSettle(BaseModel):
    """Payload of ``rx.settle``: the dispense settled, the fund-paid and personal amounts, 医保's id."""

    model_config = STRICT

    rx_id: Annotated[str, Field(pattern=ID_PATTERN)]
    dispense_record: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    settlement_id: Annotated[str, Field(pattern=ID_PATTERN)]
    fund_paid: str
    personal_paid: str
    settled_at: Annotated[str, AfterValidator(check_instant)]


def _yuan(value: str, field: str) -> str:
    if not _YUAN.fullmatch(value):
        raise RxAmountInvalid(
            'an amount is a decimal string in yuan with two places ("12.30"), at most 999999.99',
            details={"field": field},
        )
    return str(Decimal(value))


def review_facts(obj: dict[str, Any], ctx: AdaptContext) -> tuple[str, dict[str, Any]]:
    review = validate_model(RxReview, obj)
    return review.rx_id, {
        "rx_id": review.rx_id,
        "decision": review.decision,
        "reason": review.reason,
        "reviewed_at": past_instant(review.reviewed_at, "reviewed_at", ctx),
    }


def settle_facts(obj: dict[str, Any], ctx: AdaptContext) -> tuple[str, dict[str, Any]]:
    settle = validate_model(RxSettle, obj)
    settled_at = past_instant(settle.settled_at, "settled_at", ctx)
    return settle.rx_id, {
        "rx_id": settle.rx_id,
        "dispense_record": settle.dispense_record,
        "settlement_id": settle.settlement_id,
        "fund_paid": _yuan(settle.fund_paid, "fund_paid"),
        "personal_paid": _yuan(settle.personal_paid, "personal_paid"),
        "settled_at": settled_at,
    }
