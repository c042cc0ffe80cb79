"""E-prescriptions (处方流转): ``rx.issue`` (FHIR MedicationRequest), ``rx.dispense``, ``rx.revoke``."""

from adapters.rx.domain import DOMAIN
from adapters.rx.payload import PrescriptionAdapter

WORKFLOW = PrescriptionAdapter()

__all__ = ["DOMAIN", "WORKFLOW", "PrescriptionAdapter"]
