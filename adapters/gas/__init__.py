"""The gas network (燃气网络): readings of gas sources, pipeline sensors and customer meters as JSON with
units, batch-signed by the gas utility's data logger (``gas.batch``), with leak and pressure alarms."""

from adapters.gas.domain import DOMAIN
from adapters.gas.workflow import GasWorkflow

WORKFLOW = GasWorkflow()

__all__ = ["DOMAIN", "WORKFLOW", "GasWorkflow"]
