"""Environmental monitoring: ``env.reading`` from HJ 212-2017 packets or their JSON form."""

from adapters.env.domain import DOMAIN
from adapters.env.payload import EnvAdapter

WORKFLOW = EnvAdapter()

__all__ = ["DOMAIN", "WORKFLOW", "EnvAdapter"]
