"""Shared NewTypes, so signatures say what a string means."""

from typing import NewType

Digest = NewType("Digest", str)  # SM3, lowercase hex, 64 characters
OrgId = NewType("OrgId", str)
RecordId = NewType("RecordId", str)
Subject = NewType("Subject", str)  # "rx:…", "dataset:…", "station:…", "branch:…"
RecordKind = NewType("RecordKind", str)  # "rx.issue", "env.reading", …
