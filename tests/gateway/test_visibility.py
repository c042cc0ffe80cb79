"""``visibility.Reader``'s look-ups of a subject's history go through the subject's index on SQLite (which
has no statistics to choose by): the party look-up walked the reader's records in the ``(org, nonce)``
unique index, all of them for a subject the reader has none of (a third of a trace page at 200,000 rows)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from gateway.services.reads import public_rows
from gateway.services.visibility import Reader
from tests.kit.plans import query_plans


def test_subject_look_ups_search_the_subject_index(tmp_path: Path) -> None:
    def reads(s: Session) -> None:
        # A party look-up (every reader not reading everything), a code holder's, the page.
        for org, role in (("station-1", "monitoring_station"), ("pharmacy-2", "pharmacy")):
            reader = Reader(org=org, role=role, access_code="ABCDEFGHJKMNPQRSTVWX")
            for subject in ("station:44030020261125ST0001", "rx:RX0000000000"):
                public_rows(s, reader.subject_where(s, subject, after=0), limit=101)

    plans = query_plans(tmp_path, reads)
    assert len(plans) >= 6
    for statement, details in plans:
        assert "USING INDEX ix_record_subject (subject=?" in details, (statement, details)
