"""Data sharing (政务数据共享): request → consent → access events, and consent withdrawal."""

from adapters.sharing.domain import DOMAIN
from adapters.sharing.payload import MAX_CONSENT, SharingAdapter
from adapters.sharing.workflow import SharingWorkflow

WORKFLOW = SharingWorkflow()

__all__ = ["DOMAIN", "MAX_CONSENT", "WORKFLOW", "SharingAdapter", "SharingWorkflow"]
