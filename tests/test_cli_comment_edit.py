"""`rhythm issue comment-edit` on a data directory: the REST PATCH's service, author only
(the replica form is in tests/test_offline_comment_edit.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, PASSWORD_INPUT, cli_on, tenant_rows

BOB = "bob@example.com"


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    run = cli_on(tmp_path / "data", ACME_SETUP)
    for args in (
        ("user", "create", BOB),
        ("member", "add", "acme", BOB),
        ("member", "add", "acme", BOB, "-p", "WEB", "--role", "developer"),
        ("issue", "create", "Login broken", "-o", "acme", "-p", "WEB", "--as", ANN),
    ):
        result = run(*args, input=PASSWORD_INPUT)
        assert result.exit_code == 0, (args, result.output)
    return run


def _comment(rhythm: Any, who: str, body: str) -> str:
    result = rhythm("issue", "comment", "WEB-1", body, "-o", "acme", "--as", who, "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def test_the_author_edits_and_the_change_is_logged_and_searchable(rhythm: Any) -> None:
    made = _comment(rhythm, ANN, "seen on 2.3")
    result = rhythm("issue", "comment-edit", "web-1", made, "seen on 2.3 and 2.4 zebrafish",
                    "-o", "acme", "--as", ANN)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"edited comment {made} on WEB-1 (v2)\n"
    result = rhythm("issue", "comments", "WEB-1", "-o", "acme", "--json")
    (item,) = json.loads(result.stdout)["items"]
    assert (item["body"], item["version"]) == ("seen on 2.3 and 2.4 zebrafish", 2)
    assert tenant_rows(rhythm, "SELECT entity, op, field, origin FROM changes"
                       " WHERE entity = 'comment' ORDER BY seq") == [
        ("comment", "create", None, "cli"), ("comment", "update", "body", "cli"),
    ]  # fmt: skip
    found = rhythm("issue", "search", "zebrafish", "-o", "acme", "--json")
    assert [i["key"] for i in json.loads(found.stdout)["items"]] == ["WEB-1"]
    same = rhythm("issue", "comment-edit", "WEB-1", made, "seen on 2.3 and 2.4 zebrafish",
                  "-o", "acme", "--as", ANN, "--json")  # fmt: skip
    assert same.exit_code == 0 and json.loads(same.stdout)["version"] == 2  # nothing changed


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (("WEB-1", "{bob}", "mine now", "--as", ANN), "only the author can edit a comment", 1),
        (
            (
                "WEB-1",
                "{bob}",
                "no one",
            ),
            "name the person who wrote the comment",
            1,
        ),
        (("WEB-1", "no-such-id", "x", "--as", BOB), "no comment no-such-id on WEB-1", 3),
        (("WEB-9", "{bob}", "x", "--as", BOB), "no issue WEB-9", 3),
        (("WEB-1", "{bob}", "", "--as", BOB), "body", 1),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    rhythm: Any, args: tuple[str, ...], message: str, code: int
) -> None:
    made = _comment(rhythm, BOB, "bob's words")
    typed = [a.replace("{bob}", made) for a in args]
    result = rhythm("issue", "comment-edit", *typed, "-o", "acme")
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error:") and message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert tenant_rows(rhythm, "SELECT body, version FROM comments") == [("bob's words", 1)]


def test_json_is_the_patch_routes_shape(rhythm: Any) -> None:
    import jsonschema

    from tracker.http.openapi import build_openapi
    from tracker.http.routes import all_routes

    made = _comment(rhythm, ANN, "first")
    result = rhythm("issue", "comment-edit", "WEB-1", made, "second", "-o", "acme",
                    "--as", ANN, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = build_openapi(all_routes())
    path = "/api/v1/orgs/{org}/projects/{project}/issues/{n}/comments/{comment_id}"
    response = spec["paths"][path]["patch"]["responses"]["200"]
    schema = {**response["content"]["application/json"]["schema"],
              "components": spec["components"]}  # fmt: skip
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema)
    assert (document["id"], document["body"], document["version"]) == (made, "second", 2)
