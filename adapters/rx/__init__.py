"""E-prescriptions (处方流转): ``rx.issue`` (FHIR MedicationRequest), ``rx.dispense``, ``rx.revoke``."""

from adapters.rx.domain import DOMAIN
from adapters.rx.payload import MAX_VALIDITY, PrescriptionAdapter
from adapters.rx.workflow import RxWorkflow

WORKFLOW = RxWorkflow()

__all__ = ["DOMAIN", "MAX_VALIDITY", "WORKFLOW", "PrescriptionAdapter", "RxWorkflow"]
