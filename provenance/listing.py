"""A subject's history as the gateway lists it, page by page, read as the word of a party being checked.

A gateway (or whoever answers in its place) may repeat records, send a cursor that never advances (the
reader would loop for ever) or list without end. :class:`HistoryPages` reads each page's ``next_cursor``:
it must be an integer past the one asked for, a page that says "more" must hold records, and after
``max_pages`` pages the rest is left out and ``truncated`` says so. The /verify page applies the same rules
(``webui/src/app.js`` ``historyOf``). Repeated record ids are the caller's to refuse, per row (step
``listing``: ``provenance.verify.check_listed(duplicate=True)``).

What it cannot see: a record the gateway leaves out. Records name their predecessor (``prev``) only as
their signer chose to, and a reader may see only some records of a subject, so a gap is not evidence of
anything; ``docs/security.md`` states this residual risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provenance.errors import ListingInvalid

# 100 pages of the gateway's default 100 records: 10,000 records, then a truncation warning.
MAX_HISTORY_PAGES = 100


@dataclass(slots=True)
class HistoryPages:
    """The pagination state of one history listing; ``accept`` each page's document in turn."""

    max_pages: int = MAX_HISTORY_PAGES
    after: int = 0  # the cursor the next page is asked for (0: the first page)
    pages: int = 0
    truncated: bool = False

    def accept(self, doc: Any) -> tuple[list[Any], int | None]:
        """The page's items and the cursor of the next page (None: the last one read); raises
        :class:`ListingInvalid` when the page cannot be part of one finite listing."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("items"), list):
            raise ListingInvalid("the gateway's history page has no 'items' list")
        items: list[Any] = doc["items"]
        cursor = doc.get("next_cursor")
        self.pages += 1
        if cursor is None:
            return items, None
        if type(cursor) is not int or cursor <= self.after:
            raise ListingInvalid(
                f"the gateway's next_cursor {str(cursor)[:40]} does not advance past {self.after}: "
                "the listing would never end",
                details={"after": self.after, "next_cursor": str(cursor)[:40]},
            )
        if not items:
            raise ListingInvalid(
                f"an empty history page says more records follow (next_cursor {cursor})",
                details={"after": self.after, "next_cursor": cursor},
            )
        self.after = cursor
        if self.pages >= self.max_pages:
            self.truncated = True
            return items, None
        return items, cursor
