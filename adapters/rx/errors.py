"""The prescription domain's workflow errors, each with its stable code (payload faults:
``adapters.errors``)."""

from __future__ import annotations

from provenance.errors import Conflict, NotFound, NotPermitted


class RxExists(Conflict):
    code = "RX_EXISTS"


class RxUnknown(NotFound):
    code = "RX_UNKNOWN"


class RxAlreadyDispensed(Conflict):
    code = "RX_ALREADY_DISPENSED"


class RxRevoked(Conflict):
    code = "RX_REVOKED"


class RxExpired(Conflict):
    code = "RX_EXPIRED"


class RxNotIssuer(NotPermitted):
    code = "RX_NOT_ISSUER"


class RxNotRecorded(Conflict):
    """The chain holds the prescription but this gateway holds no signed ``rx.issue`` record of it (put there
    by a raw transaction, or through another gateway): a dispense cannot be checked against its content."""

    code = "RX_NOT_RECORDED"
