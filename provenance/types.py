"""Shared NewTypes, so signatures say what a string means."""

from enum import IntEnum
from typing import NewType

Digest = NewType("Digest", str)  # SM3, lowercase hex, 64 characters
OrgId = NewType("OrgId", str)
RecordId = NewType("RecordId", str)
Subject = NewType("Subject", str)  # "rx:…", "dataset:…", "station:…", "branch:…"
RecordKind = NewType("RecordKind", str)  # "rx.issue", "env.reading", …


class Role(IntEnum):
    """An organisation's role in ``OrgRegistry`` (mirrors the Solidity enum number for number)."""

    NONE = 0
    HOSPITAL = 1
    PHARMACY = 2
    DATA_OWNER = 3
    DATA_USER = 4
    ENV_BUREAU = 5
    MONITORING_STATION = 6
    PARTY_BRANCH = 7
    AUDITOR = 8
    REGULATOR = 9
    LOG_OPERATOR = 10
    PHARMACIST = 11  # a licensed pharmacist (执业药师): reviews prescriptions (审方)
    INSURER = 12  # a medical insurance bureau (医保): settles dispenses
    GAS_UTILITY = 13  # a gas utility (燃气公司): its data loggers sign gas network readings

    @property
    def label(self) -> str:
        """The lower-case name of trust files, manifests and the API (``Role.DATA_OWNER``: ``data_owner``)."""
        return self.name.lower()
