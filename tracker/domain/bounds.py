"""The ranges every number and date in a request must fall in.

Python integers and datetimes are unbounded or nearly so; SQLite's are not
(INTEGER is int64: 2**63 binds as OverflowError), and datetime arithmetic near
year 1 or 9999 overflows (`9999-12-31T23:59:59-14:00` in UTC is year 10000).
Both used to surface as 500s, so requests are held to these ranges at the edge:
the models (tracker.domain.models.base's bounded int types, documented in the
OpenAPI as minimum/maximum), the query language (tracker.domain.query) and every
date parser (`moment_in_range`, `date_in_range`) refuse anything outside them
with a 4xx that names the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

#: The largest integer a request may carry: every JSON client reads it exactly
#: (IEEE doubles), and it lies far inside SQLite's int64.
MAX_INT = 2**53 - 1
#: Issue numbers: at most 15 digits (the same bound the URL and relation refs use).
MAX_ISSUE_NUMBER = 10**15 - 1
ISSUE_NUMBER_DIGITS = 15
#: Dates and moments: from the Unix epoch up to the end of year 9998, so a day or
#: a time-zone offset either way never leaves datetime's range.
MIN_YEAR, MAX_YEAR = 1970, 9998
DATE_RANGE_TEXT = f"between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31"


def date_in_range(day: date) -> date:
    """`day` itself, or ValueError when its year is outside MIN_YEAR..MAX_YEAR."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"must be a date {DATE_RANGE_TEXT}")
    return day


def moment_in_range(moment: datetime) -> datetime:
    """`moment` in UTC (naive taken as UTC), or ValueError when outside the range.

    The year is checked before converting, so the conversion itself cannot overflow.
    """
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"must be a time {DATE_RANGE_TEXT}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
