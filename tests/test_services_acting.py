"""act_as: the one way to act as someone outside HTTP builds the HTTP door's access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tracker.domain.changes import Actor
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.issues import IssueCreate
from tracker.domain.models.orgs import OrgIn, OrgMemberIn, ProjectIn
from tracker.domain.permissions import OrgRole, Permission, ProjectRole
from tracker.errors import Forbidden, NotFound, ValidationFailed
from tracker.services import accounts, issues, members, orgs, projects
from tracker.services.access import OrgAccess, ProjectAccess, authorize_project
from tracker.services.accounts import Principal
from tracker.services.acting import act_as
from tracker.services.runtime import Core


@dataclass
class Acme:
    core: Core
    owner: str
    member: str
    stranger: str


@pytest.fixture
async def acme(core_factory: Any) -> Acme:
    """Org `acme` (owner, plain member; a stranger outside), projects WEB (org) and SEC
    (private, the member is not in it)."""
    core = await core_factory()
    ids = []
    for name in ("owner", "member", "stranger"):
        user = await accounts.register(
            core, RegisterIn(email=f"{name}@example.com", password="x" * 12)
        )
        ids.append(user.id)
    actor = Actor(ids[0], "cli")
    await orgs.create_org(core, Principal(ids[0]), OrgIn(name="Acme", slug="acme"), actor)
    access, _ = await act_as(core, "acme", None, ids[0], "cli")
    await members.add_org_member(core, access, OrgMemberIn(email="member@example.com"), actor)
    await projects.create_project(core, access, ProjectIn(name="Web", key="WEB"), actor)
    secret = ProjectIn(name="Sec", key="SEC", visibility="private")
    await projects.create_project(core, access, secret, actor)
    return Acme(core, *ids)


async def test_a_person_with_a_permission_gets_what_the_http_door_builds(acme: Acme) -> None:
    by_email, actor = await act_as(
        acme.core,
        "acme",
        "WEB",
        "member@example.com",
        "sync",
        permission=Permission.ISSUE_CREATE,
    )
    by_id, _ = await act_as(
        acme.core, "acme", "web", acme.member, "sync", permission=Permission.ISSUE_CREATE
    )
    door = await authorize_project(acme.core, Permission.ISSUE_CREATE, acme.member, "acme", "WEB")
    assert by_email == by_id == door and isinstance(door, ProjectAccess)
    assert door.org.role is OrgRole.MEMBER and door.project.role is ProjectRole.REPORTER
    assert actor == Actor(acme.member, "sync")
    issue = await issues.create_issue(acme.core, by_email, IssueCreate(title="synced"), actor)
    assert issue.reporter == acme.member


async def test_the_permission_table_refuses_as_over_http(acme: Acme) -> None:
    """404 hides (not a member, private project), 403 refuses (too small a role)."""
    with pytest.raises(Forbidden):
        await act_as(
            acme.core, "acme", "WEB", acme.member, "sync", permission=Permission.ISSUE_DELETE
        )
    with pytest.raises(NotFound):
        await act_as(
            acme.core, "acme", "SEC", acme.member, "sync", permission=Permission.PROJECT_READ
        )
    with pytest.raises(NotFound):
        await act_as(acme.core, "acme", None, acme.stranger, "sync", permission=Permission.ORG_READ)
    with pytest.raises(Forbidden):
        await act_as(acme.core, "acme", None, acme.member, "sync", permission=Permission.ORG_MANAGE)
    org_only, _ = await act_as(
        acme.core, "acme", None, acme.member, "sync", permission=Permission.ORG_READ
    )
    assert type(org_only) is OrgAccess and org_only.org.role is OrgRole.MEMBER


async def test_operator_rights_without_a_permission(acme: Acme) -> None:
    """The CLI on a data directory: owner rights, the named person recorded as actor."""
    access, actor = await act_as(acme.core, "acme", "SEC", "member@example.com", "cli")
    assert access.org.role is OrgRole.OWNER and access.project.role is ProjectRole.ADMIN
    assert actor == Actor(acme.member, "cli")


async def test_the_script_identity_is_confined_to_one_project(acme: Acme) -> None:
    with pytest.raises(ValidationFailed):
        await act_as(acme.core, "acme", None, None, "script")
    access, actor = await act_as(acme.core, "acme", "WEB", None, "script")
    assert actor == Actor(None, "script") and access.user_id is None
    assert access.project.key == "WEB" and access.project.role is ProjectRole.ADMIN
    # a permission does not narrow the system identity: it acts with operator rights
    same, _ = await act_as(
        acme.core, "acme", "WEB", None, "script", permission=Permission.ISSUE_DELETE
    )
    assert same.project.role is ProjectRole.ADMIN


async def test_unknown_people_and_orgs_are_not_found(acme: Acme) -> None:
    for who in ("nobody@example.com", "not-an-id", "0190abcd-0000-7000-8000-000000000000"):
        with pytest.raises(NotFound):
            await act_as(acme.core, "acme", "WEB", who, "cli")
    with pytest.raises(NotFound):
        await act_as(acme.core, "nope", None, acme.owner, "cli")
    with pytest.raises(NotFound):
        await act_as(acme.core, "acme", "NOPE", acme.owner, "cli")
