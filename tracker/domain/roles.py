"""Org and project roles, and the role a person has in a project.

Kept apart from tracker/domain/permissions.py (the permission table, with dataclasses)
so the CLI's fast read path (cli/fast.py) decides who may read a project with
nothing but `enum` imported: `dataclasses` brings in `inspect`, ~10 ms of a ~40 ms
run on a quiet box (docs/offline.md, "Fewer imports on the fast path").
"""

from __future__ import annotations

from enum import StrEnum


class OrgRole(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _ORG_RANK[self]


class ProjectRole(StrEnum):
    VIEWER = "viewer"
    REPORTER = "reporter"
    DEVELOPER = "developer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _PROJECT_RANK[self]


_ORG_RANK = {OrgRole.MEMBER: 1, OrgRole.ADMIN: 2, OrgRole.OWNER: 3}
_PROJECT_RANK = {
    ProjectRole.VIEWER: 1,
    ProjectRole.REPORTER: 2,
    ProjectRole.DEVELOPER: 3,
    ProjectRole.ADMIN: 4,
}


def effective_project_role(
    org_role: OrgRole | None, member_role: ProjectRole | None, visibility: str
) -> ProjectRole | None:
    """The role a person has in a project; None means the project is invisible to them."""
    if org_role is None:
        return None
    if org_role in (OrgRole.OWNER, OrgRole.ADMIN):
        return ProjectRole.ADMIN
    if member_role is not None:
        return member_role
    return ProjectRole.REPORTER if visibility == "org" else None
