"""The search query language: exact trees, exact error positions, and FTS5 safety."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.domain.fts import MatchPlan, build_match, quote
from tracker.domain.query import (
    AbsoluteDate,
    Comparison,
    Exact,
    FieldFilter,
    Query,
    Range,
    RelativeDate,
    SortKey,
    TextTerm,
    date_bounds,
    parse_date,
    parse_query,
    resolve_date,
)
from tracker.errors import QuerySyntaxError

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def day(text: str) -> AbsoluteDate:
    return AbsoluteDate(value=datetime.fromisoformat(text).replace(tzinfo=UTC), date_only=True)


def rel(amount: int, unit: str = "d") -> RelativeDate:
    return RelativeDate(amount=amount, unit=unit)  # type: ignore[arg-type]


def word(text: str, position: int = 0, negated: bool = False) -> TextTerm:
    return TextTerm(text=text, kind="word", negated=negated, position=position)


def only_filter(text: str) -> FieldFilter:
    query = parse_query(text)
    assert not query.terms and not query.sorts and len(query.filters) == 1
    return query.filters[0]


# --- text terms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("", ()),
        ("   \t\n ", ()),
        ("login", (word("login"),)),
        ("login  crash", (word("login"), word("crash", 7))),
        ('"exact phrase"', (TextTerm(text="exact phrase", kind="phrase", position=0),)),
        ("ab*", (TextTerm(text="ab", kind="prefix", position=0),)),
        ("-crash", (word("crash", 0, negated=True),)),
        ('x -"a b"', (word("x"), TextTerm(text="a b", kind="phrase", negated=True, position=2))),
        ("-log*", (TextTerm(text="log", kind="prefix", negated=True, position=0),)),
        ("--x", (word("-x", 0, negated=True),)),
        (
            "C++ it's e-mail foo*bar",
            (word("C++"), word("it's", 4), word("e-mail", 9), word("foo*bar", 16)),
        ),
        (
            "AND OR NOT NEAR(a ^b",
            tuple(
                word(w, p)
                for w, p in [("AND", 0), ("OR", 4), ("NOT", 7), ("NEAR(a", 11), ("^b", 18)]
            ),
        ),
        ("Ünïcode日本", (word("Ünïcode日本"),)),
        ("   padded  ", (word("padded", 3),)),
    ],
)
def test_parse_query_text_terms(text: str, terms: tuple[TextTerm, ...]) -> None:
    assert parse_query(text) == Query(terms=terms)


# --- field filters ------------------------------------------------------------------------


def exact(*values: str) -> tuple[Exact, ...]:
    return tuple(Exact(value=v) for v in values)


@pytest.mark.parametrize(
    ("text", "field", "values", "custom"),
    [
        ("status:open", "status", exact("open"), False),
        ("Status:Open", "status", exact("Open"), False),
        ('status:open,"In Progress"', "status", exact("open", "In Progress"), False),
        ('status:"In Review"', "status", exact("In Review"), False),
        ("priority:high,low", "priority", exact("high", "low"), False),
        ("type:bug", "type", exact("bug"), False),
        ("assignee:me", "assignee", exact("me"), False),
        ("assignee:none", "assignee", exact("none"), False),
        ("reporter:ann@example.com", "reporter", exact("ann@example.com"), False),
        ("tag:ui", "tag", exact("ui"), False),
        ("sprint:current", "sprint", exact("current"), False),
        ('sprint:"Sprint 4"', "sprint", exact("Sprint 4"), False),
        ("project:WEB", "project", exact("WEB"), False),
        ("parent:WEB-12", "parent", exact("WEB-12"), False),
        ("parent:12", "parent", exact("12"), False),
        ("is:open", "is", exact("open"), False),
        ("is:CLOSED", "is", exact("closed"), False),
        ("has:assignee,sprint,Due", "has", exact("assignee", "sprint", "due"), False),
        ("severity:high", "severity", exact("high"), True),
        ('"Story points":3', "Story points", exact("3"), True),
        ('"status":x', "status", exact("x"), True),
        ("url:http://x.org/a:b", "url", exact("http://x.org/a:b"), True),
        ('"Story points":>3', "Story points", (Comparison(op=">", value="3"),), True),
        ("points:<=8", "points", (Comparison(op="<=", value="8"),), True),
        ("points:1..5", "points", (Range(lo="1", hi="5"),), True),
        ('severity:">3"', "severity", exact(">3"), True),
        ("status:1..2", "status", exact("1..2"), False),
    ],
)
def test_parse_query_field_filters(
    text: str, field: str, values: tuple[Exact, ...], custom: bool
) -> None:
    assert only_filter(text) == FieldFilter(field=field, values=values, custom=custom)


def test_parse_query_negated_filter_keeps_its_position() -> None:
    query = parse_query("crash -tag:wontfix")
    assert query == Query(
        terms=(word("crash"),),
        filters=(FieldFilter(field="tag", values=exact("wontfix"), negated=True, position=6),),
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("created:>2w", Comparison(op=">", value=rel(-2, "w"))),
        ("updated:<12h", Comparison(op="<", value=rel(-12, "h"))),
        ("due:<=2026-01-31", Comparison(op="<=", value=day("2026-01-31"))),
        ("due:>=+3d", Comparison(op=">=", value=rel(3))),
        ("created:>-1w", Comparison(op=">", value=rel(-1, "w"))),
        (
            "created:>=2026-01-01T10:00:00Z",
            Comparison(
                op=">=",
                value=AbsoluteDate(value=datetime(2026, 1, 1, 10, tzinfo=UTC), date_only=False),
            ),
        ),
        (
            "created:<2026-01-01T10:00:00+02:00",
            Comparison(
                op="<",
                value=AbsoluteDate(value=datetime(2026, 1, 1, 8, tzinfo=UTC), date_only=False),
            ),
        ),
        ("created:2026-01-01..2026-01-31", Range(lo=day("2026-01-01"), hi=day("2026-01-31"))),
        ("created:2w..1w", Range(lo=rel(-2, "w"), hi=rel(-1, "w"))),
        ("updated:2026-01-01..7d", Range(lo=day("2026-01-01"), hi=rel(-7))),
        ("resolved:2026-03-01", Range(lo=day("2026-03-01"), hi=day("2026-03-01"))),
        ("created:7d", Range(lo=rel(-7), hi=rel(0))),
        ("due:+7d", Range(lo=rel(0), hi=rel(7))),
        ('due:"<=2026-01-31"', Comparison(op="<=", value=day("2026-01-31"))),
    ],
)
def test_parse_query_date_values(text: str, value: Comparison | Range) -> None:
    assert only_filter(text).values == (value,)


# --- sort ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sorts"),
    [
        ("sort:updated", [("updated", True)]),
        ("sort:created", [("created", True)]),
        ("sort:relevance", [("relevance", True)]),
        ("sort:priority", [("priority", True)]),
        ("sort:number", [("number", False)]),
        ("sort:number-desc", [("number", True)]),
        ("sort:Updated-ASC", [("updated", False)]),
        ("sort:priority-desc,number", [("priority", True), ("number", False)]),
        ("sort:created-asc sort:number-desc", [("created", False), ("number", True)]),
    ],
)
def test_parse_query_sort(text: str, sorts: list[tuple[str, bool]]) -> None:
    expected = tuple(SortKey(key=k, descending=d) for k, d in sorts)
    assert parse_query(text) == Query(sorts=expected)


def test_parse_query_everything_together() -> None:
    query = parse_query('login -"stack trace" status:open,"In Progress" -has:due sort:updated')
    assert query == Query(
        terms=(
            word("login"),
            TextTerm(text="stack trace", kind="phrase", negated=True, position=6),
        ),
        filters=(
            FieldFilter(field="status", values=exact("open", "In Progress"), position=21),
            FieldFilter(field="has", values=exact("due"), negated=True, position=47),
        ),
        sorts=(SortKey(key="updated", descending=True),),
    )


# --- errors -------------------------------------------------------------------------------

TOO_MANY_VALUES = "status:" + ",".join(f"s{i}" for i in range(51))

ERRORS = [
    ('"abc', "unterminated quote", 0),
    ('foo "abc', "unterminated quote", 4),
    ('status:"open', "unterminated quote", 7),
    ("status:", "expected a value after 'status:'", 7),
    ("status: open", "expected a value after 'status:'", 7),
    ("status:,open", "expected a value after 'status:'", 7),
    ("status:open,", "expected a value after ','", 12),
    ('-"Story points":', "expected a value after '\"Story points\":'", 16),
    ("sort:foo", "unknown sort key 'foo'", 5),
    ("sort:updated,Foo-asc", "unknown sort key 'Foo'", 13),
    ("sort:updated-up", "unknown sort direction 'up'", 13),
    ("-sort:updated", "sort: cannot be negated", 0),
    ("has:milestone", "unknown has: value 'milestone'", 4),
    ("is:pending", "unknown is: value 'pending'", 3),
    ("created:>x", "bad date 'x'", 9),
    ("created:>", "expected a date", 9),
    ("created:2026-02-30", "bad date '2026-02-30'", 8),
    ("created:2026-01-01T10:00", "bad date '2026-01-01T10:00'", 8),
    ("created:20260101", "bad date '20260101'", 8),
    ("created:2026-01-01..", "expected a date", 20),
    ("created:1d..bad", "bad date 'bad'", 12),
    ("due:9999-12-31", "bad date '9999-12-31'", 4),
    ("created:>100000d", "bad date '100000d'", 9),
    ("created:3m", "bad date '3m'", 8),
    ("created:٣d", "bad date '٣d'", 8),
    ("-", "expected a term after '-'", 0),
    ("a - b", "expected a term after '-'", 2),
    ("a*", "a prefix needs at least 2 letters or digits before '*'", 1),
    ("*", "a prefix needs at least 2 letters or digits before '*'", 0),
    ("x -a*", "a prefix needs at least 2 letters or digits before '*'", 4),
    ("e-m*", "a prefix needs at least 2 letters or digits before '*'", 3),
    ("ab**", "a prefix needs at least 2 letters or digits before '*'", 3),
    ('login"', "unexpected quote", 5),
    ('"a"b', "expected a space after the closing quote", 3),
    ('status:a"b"', "unexpected quote", 8),
    ('status:"a"b', "expected a space after the closing quote", 10),
    (":foo", "expected a field name before ':'", 0),
    ("-:foo", "expected a field name before ':'", 1),
    ('" ":x', "expected a field name before ':'", 0),
    ('""', "empty phrase", 0),
    ('-" "', "empty phrase", 1),
    ('status:""', "empty value", 7),
    ("status:>open", "'status:' does not take comparisons", 7),
    ("parent:abc", "bad parent 'abc' (expected KEY-N or N)", 7),
    ("severity:>", "expected a value after '>'", 10),
    ("points:..5", "expected a value on both sides of '..'", 7),
    ("a\x00b", "control character U+0000 not allowed", 1),
    ("ok \x7f", "control character U+007F not allowed", 3),
    ("x" * 1001, "query too long (max 1000 characters)", 1000),
    (" ".join(f"w{i}" for i in range(17)), "too many search terms (max 16)", 54),
    (TOO_MANY_VALUES, "too many values (max 50)", TOO_MANY_VALUES.rindex("s50")),
]


@pytest.mark.parametrize(("text", "message", "position"), ERRORS)
def test_parse_query_errors_name_the_fault_and_position(
    text: str, message: str, position: int
) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    assert caught.value.position == position
    assert caught.value.detail == f"{message} (at position {position})"


def test_parse_query_accepts_limits_exactly() -> None:
    assert len(parse_query("status:" + "x" * 993).filters) == 1
    assert len(parse_query(" ".join(f"w{i}" for i in range(16))).terms) == 16
    assert len(parse_query("tag:" + ",".join(str(i) for i in range(50))).filters[0].values) == 50


# --- dates --------------------------------------------------------------------------------


def test_parse_date_public_for_custom_fields() -> None:
    assert parse_date("2026-01-31") == day("2026-01-31")
    assert parse_date("+2w") == rel(2, "w")
    with pytest.raises(QuerySyntaxError) as caught:
        parse_date("soon", 12)
    assert caught.value.position == 12


def test_resolve_date_relative_and_absolute() -> None:
    assert resolve_date(rel(-2, "w"), NOW) == NOW - timedelta(weeks=2)
    assert resolve_date(rel(3, "h"), NOW) == NOW + timedelta(hours=3)
    assert resolve_date(day("2026-01-31"), NOW) == datetime(2026, 1, 31, tzinfo=UTC)


def test_date_bounds_cover_a_whole_day_or_one_instant() -> None:
    assert date_bounds(day("2026-01-31"), NOW) == (
        datetime(2026, 1, 31, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    start, end = date_bounds(rel(-7), NOW)
    assert (start, end - start) == (NOW - timedelta(days=7), timedelta(microseconds=1))


# --- FTS5 expressions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("", MatchPlan(positive=None, negative=None)),
        ("status:open", MatchPlan(positive=None, negative=None)),
        ("login", MatchPlan(positive='"login"', negative=None)),
        ('login "stack trace"', MatchPlan(positive='"login" AND "stack trace"', negative=None)),
        ("log*", MatchPlan(positive='"log" *', negative=None)),
        (
            "login -crash -slow",
            MatchPlan(positive='("login") NOT ("crash" OR "slow")', negative=None),
        ),
        ("-crash -slow", MatchPlan(positive=None, negative='"crash" OR "slow"')),
        ("NOT OR", MatchPlan(positive='"NOT" AND "OR"', negative=None)),
    ],
)
def test_build_match_plans(text: str, plan: MatchPlan) -> None:
    assert build_match(parse_query(text).terms) == plan


def test_quote_doubles_quotes_and_blanks_control_characters() -> None:
    assert quote('say "hi"') == '"say ""hi"""'
    assert quote("a\x00b\x1fc") == '"a b c"'
    assert quote("\ud800x") == '" x"'


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE t USING fts5(title, description, comments,"
        " prefix='2 3', tokenize='unicode61 remove_diacritics 2')"
    )
    db.executemany(
        "INSERT INTO t (rowid, title, description, comments) VALUES (?, ?, ?, ?)",
        [
            (1, "Login fails in C++ client", "NOT a joke: e-mail bounce", "it's slow"),
            (2, "Crash on startup", "stack trace attached", "café naïve"),
            (3, "Logout button", "nothing here", "acme"),
        ],
    )
    yield db
    db.close()


def run_plan(db: sqlite3.Connection, plan: MatchPlan) -> set[int]:
    """Run a plan the way the compiler will, so the all-negated form is exercised too."""
    sql = "SELECT rowid FROM t WHERE 1"
    params: list[str] = []
    if plan.positive is not None:
        sql += " AND t MATCH ?"
        params.append(plan.positive)
    if plan.negative is not None:
        sql += " AND rowid NOT IN (SELECT rowid FROM t WHERE t MATCH ?)"
        params.append(plan.negative)
    return {row[0] for row in db.execute(sql, params)}


NASTY = [
    'login"', '"unterminated', "AND", "OR", "NOT login", "login AND", "login NOT", "(login",
    "login)", "NEAR(", "NEAR(a b)", "C++", "it's", "foo.bar", "#tag", "@user", "a/b", "foo?",
    "foo%", "-login", "e-mail", "5-seconds", "a:b", "nosuchcol:x", "rowid:1", "*", "^login",
    "secret_note:acme", "{title body}: x", '"secret_note:acme"', '"{title}: login"', "log*",
    "lo*", '"a""b"', "'single'", "\\", "\\\"", "a\x00b", "\x00", "\u200b", "\ufeff", "😀",
    "日本語*", "ab-*", "--", "-\"x\"", "+", "+login", "NEAR/2", "\"*\"", "café", "- -", ",,",
    "status:open,", "::", "x:", '":"', '"a":"b"', "a b c d e f g h i j k l m n o p",
    "title:login", "t:x", "login -crash", "-crash", "-crash -login", "-NOT -AND",
]  # fmt: skip


@pytest.mark.parametrize("text", NASTY)
def test_nasty_input_parses_or_fails_cleanly_and_sqlite_accepts_the_match(
    fts: sqlite3.Connection, text: str
) -> None:
    try:
        terms = parse_query(text).terms
    except QuerySyntaxError:
        terms = ()
    run_plan(fts, build_match(terms))
    # The quoting must hold even for terms the parser would never produce.
    for kind in ("word", "phrase", "prefix"):
        run_plan(fts, build_match([TextTerm(text=text, kind=kind)]))  # type: ignore[arg-type]
        run_plan(fts, build_match([TextTerm(text=text, kind=kind, negated=True)]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("C++", {1}),
        ("NOT", {1}),
        ("it's", {1}),
        ("e-mail", {1}),
        ("cafe", {2}),
        ("log*", {1, 3}),
        ('"stack trace"', {2}),
        ("-login", {2, 3}),
        ("-crash -login", {3}),
        ("log* -crash -fails", {3}),
        ('"{title}: login"', set()),
    ],
)
def test_match_semantics(fts: sqlite3.Connection, text: str, rows: set[int]) -> None:
    assert run_plan(fts, build_match(parse_query(text).terms)) == rows


def test_user_text_cannot_filter_on_a_column() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE s USING fts5(title, secret_note)")
    db.execute("INSERT INTO s VALUES ('public', 'acme')")
    raw = db.execute("SELECT count(*) FROM s WHERE s MATCH 'secret_note:acme'").fetchone()
    assert raw == (1,)  # the threat is real for unquoted text
    term = TextTerm(text="secret_note:acme", kind="word")
    expression = build_match([term]).positive
    assert db.execute("SELECT count(*) FROM s WHERE s MATCH ?", (expression,)).fetchone() == (0,)
    db.close()


# --- properties ---------------------------------------------------------------------------

FRAGMENTS = [
    "login", "-", '"', "*", "ab*", ":", ",", "..", ">", "<=", "status:", "sort:", "has:",
    "created:", "due:", "2w", "+3d", "2026-01-31", "2026-01-01T10:00:00Z", "NOT", "OR",
    "NEAR(", "^", "(", ")", "C++", "\x00", "\t", " ", "é", "😀", "is:open", "sort:updated-asc",
    '"a b"', "-x", "e-m", "a", "x" * 40,
]  # fmt: skip

QUERY_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map(" ".join),
)


@settings(max_examples=400, deadline=None, database=None)
@given(QUERY_TEXT)
def test_property_parse_is_total_and_match_is_accepted(fts: sqlite3.Connection, text: str) -> None:
    try:
        query = parse_query(text)
    except QuerySyntaxError as error:
        assert 0 <= error.position <= len(text)
        return
    run_plan(fts, build_match(query.terms))
    for value in (v for f in query.filters for v in f.values):
        for bound in (
            (value.lo, value.hi) if isinstance(value, Range) else (getattr(value, "value", None),)
        ):
            if isinstance(bound, AbsoluteDate | RelativeDate):
                date_bounds(bound, NOW)
