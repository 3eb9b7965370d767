"""The Lucene subset used by `logpipe query --archive`: parsing and matching like Elasticsearch."""

from __future__ import annotations

import pytest

from logpipe.es.lucene import QuerySyntaxError, compile_query, parse

REC = {
    "@timestamp": "2026-11-24T10:00:00.000000Z",
    "level": "error",
    "message": "Payment FAILED for user 42: card declined",
    "service": "billing-api",
    "workspace_id": "ws-42",
    "status": 503,
    "duration_ms": 812.5,
    "route": "/api/v1/users/{id}",
    "tags": ["_parse_failure", "slow"],
    "exception": {"type": "ValueError", "stack": "Traceback ...\nValueError: bad card"},
    "event.kind": "alert",
}


@pytest.mark.parametrize(("query", "expected"), [
    ("level:error", True),
    ("level:ERROR", False),  # keyword fields are exact, like Elasticsearch
    ("failed", True),  # bare words search message, case-insensitively
    ("message:declined", True),
    ('"card declined"', True),
    ('"declined card"', False),
    ("level:error AND workspace_id:ws-42", True),
    ("level:error AND workspace_id:ws-43", False),
    ("level:info OR workspace_id:ws-42", True),
    ("NOT level:error", False),
    ("level:error -service:billing-api", False),
    ("level:error !service:other", True),
    ("level:error && service:billing*", True),
    ("service:*-api", True),
    ("service:bill?ng-api", True),
    ("status:>=500", True),
    ("status:>503", False),
    ("status:<=503", True),
    ("status:[500 TO 599]", True),
    ("status:{503 TO 599]", False),
    ("status:[500 TO *]", True),
    ("duration_ms:>800", True),
    ("status:503", True),
    ('route:"/api/v1/users/{id}"', True),
    ("tags:_parse_failure", True),
    ("tags:fast", False),
    ("exception.type:ValueError", True),
    ("exception.stack:card", True),
    ("event.kind:alert", True),
    ("_exists_:workspace_id", True),
    ("_exists_:user_id", False),
    ("level:(info OR error)", True),
    ("(level:info OR level:warning) AND status:503", False),
    ("level:error payment", True),  # implicit AND
    ("level:error nothere", False),
    ('@timestamp:["2026-11-24T00:00:00Z" TO "2026-11-25T00:00:00Z"]', True),
    ("", True),
])
def test_query_matches_like_elasticsearch(query: str, expected: bool) -> None:
    assert compile_query(query)(REC) is expected


def test_missing_field_never_matches_but_not_inverts() -> None:
    assert compile_query("user_id:u1")(REC) is False
    assert compile_query("NOT user_id:u1")(REC) is True


def test_precedence_and_binds_tighter_than_or() -> None:
    assert parse("a OR b AND c") == ("or", [("match", "message", "term", "a"),
                                            ("and", [("match", "message", "term", "b"),
                                                     ("match", "message", "term", "c")])])


@pytest.mark.parametrize(("query", "where"), [
    ('message:"unterminated', "position 9"),
    ("(level:error", "')'"),
    ("level:", "missing value"),
    ("status:[1 5]", "TO"),
    ("level:error )", "position 13"),
])
def test_syntax_errors_say_where(query: str, where: str) -> None:
    with pytest.raises(QuerySyntaxError, match=None) as info:
        parse(query)
    assert where in str(info.value)
