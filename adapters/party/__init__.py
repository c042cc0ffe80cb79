"""Party building (党建): meetings, study, dues, membership stages and transfers of members."""

from adapters.party.domain import DOMAIN
from adapters.party.payload import MEMBER_TYPES, STAGES
from adapters.party.workflow import PartyWorkflow, member_step

WORKFLOW = PartyWorkflow()

__all__ = ["DOMAIN", "MEMBER_TYPES", "STAGES", "WORKFLOW", "PartyWorkflow", "member_step"]
