"""Party building (党建): meetings, study, dues, membership stages and transfers of members."""

from adapters.party.domain import DOMAIN
from adapters.party.payload import MEMBER_TYPES, STAGES, PartyAdapter, member_step

WORKFLOW = PartyAdapter()

__all__ = ["DOMAIN", "MEMBER_TYPES", "STAGES", "WORKFLOW", "PartyAdapter", "member_step"]
