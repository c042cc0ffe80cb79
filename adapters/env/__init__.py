"""Environmental monitoring: ``env.reading`` from HJ 212-2017 packets or their JSON form, by the station
operating the monitoring point."""

from adapters.env.domain import DOMAIN
from adapters.env.workflow import EnvWorkflow

WORKFLOW = EnvWorkflow()

__all__ = ["DOMAIN", "WORKFLOW", "EnvWorkflow"]
