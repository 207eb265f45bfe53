"""Who may do what: ONE declarative table and one decision function.

Every route in the route table names a Permission; `decide` answers whether a
principal with a given org role and effective project role holds it, and says
*how* it fails: NotFound when the caller may not even see the org or project
(existence does not leak, as GitHub does for private repositories), Forbidden
when they can see it but lack the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from tracker.domain.roles import OrgRole as OrgRole  # re-exported: the roles live there
from tracker.domain.roles import ProjectRole as ProjectRole
from tracker.domain.roles import effective_project_role as effective_project_role
from tracker.errors import Forbidden, NotFound


class Scope(Enum):
    PUBLIC = "public"  # no authentication
    USER = "user"  # any authenticated user
    ORG = "org"  # needs an org role
    PROJECT = "project"  # needs an effective project role


@dataclass(frozen=True)
class Rule:
    scope: Scope
    org_role: OrgRole | None = None
    project_role: ProjectRole | None = None


class Permission(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    # org level
    ORG_READ = "org.read"
    ORG_MANAGE = "org.manage"
    ORG_DELETE = "org.delete"
    ORG_TRANSFER = "org.transfer"
    ORG_INVITE = "org.invite"
    PROJECT_CREATE = "project.create"
    # project level
    PROJECT_READ = "project.read"
    ISSUE_CREATE = "issue.create"
    COMMENT_CREATE = "comment.create"
    ISSUE_UPDATE = "issue.update"
    TAG_CREATE = "tag.create"
    TIME_LOG = "time.log"
    SPRINT_EDIT = "sprint.edit"
    ISSUE_DELETE = "issue.delete"
    ISSUE_IMPORT = "issue.import"
    PROJECT_MANAGE = "project.manage"
    MEMBERS_MANAGE = "project.members"
    WORKFLOW_MANAGE = "workflow.manage"
    SPRINT_RUN = "sprint.run"
    FIELDS_MANAGE = "fields.manage"
    SCRIPTS_MANAGE = "scripts.manage"
    WEBHOOKS_MANAGE = "webhooks.manage"


_ORG = Scope.ORG
_PRJ = Scope.PROJECT

#: The table (SPEC §3). Project roles include every role below them.
RULES: dict[Permission, Rule] = {
    Permission.PUBLIC: Rule(Scope.PUBLIC),
    Permission.AUTHENTICATED: Rule(Scope.USER),
    Permission.ORG_READ: Rule(_ORG, org_role=OrgRole.MEMBER),
    Permission.ORG_MANAGE: Rule(_ORG, org_role=OrgRole.ADMIN),
    Permission.ORG_DELETE: Rule(_ORG, org_role=OrgRole.OWNER),
    Permission.ORG_TRANSFER: Rule(_ORG, org_role=OrgRole.OWNER),
    Permission.ORG_INVITE: Rule(_ORG, org_role=OrgRole.ADMIN),
    Permission.PROJECT_CREATE: Rule(_ORG, org_role=OrgRole.ADMIN),
    Permission.PROJECT_READ: Rule(_PRJ, project_role=ProjectRole.VIEWER),
    Permission.ISSUE_CREATE: Rule(_PRJ, project_role=ProjectRole.REPORTER),
    Permission.COMMENT_CREATE: Rule(_PRJ, project_role=ProjectRole.REPORTER),
    Permission.ISSUE_UPDATE: Rule(_PRJ, project_role=ProjectRole.DEVELOPER),
    Permission.TAG_CREATE: Rule(_PRJ, project_role=ProjectRole.DEVELOPER),
    Permission.TIME_LOG: Rule(_PRJ, project_role=ProjectRole.DEVELOPER),
    Permission.SPRINT_EDIT: Rule(_PRJ, project_role=ProjectRole.DEVELOPER),
    Permission.ISSUE_DELETE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.ISSUE_IMPORT: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.PROJECT_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.MEMBERS_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.WORKFLOW_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.SPRINT_RUN: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.FIELDS_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.SCRIPTS_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
    Permission.WEBHOOKS_MANAGE: Rule(_PRJ, project_role=ProjectRole.ADMIN),
}


def holds(
    permission: Permission, org_role: OrgRole | None, project_role: ProjectRole | None
) -> bool:
    """True when the roles grant the permission (no distinction of how it fails)."""
    try:
        decide(permission, org_role=org_role, project_role=project_role)
    except (NotFound, Forbidden):
        return False
    return True


def decide(
    permission: Permission,
    *,
    org_role: OrgRole | None,
    project_role: ProjectRole | None = None,
) -> None:
    """Raise NotFound (cannot see) or Forbidden (can see, lacks the role); else return."""
    rule = RULES[permission]
    if rule.scope in (Scope.PUBLIC, Scope.USER):
        return
    if org_role is None:
        raise NotFound("organization not found")
    if rule.scope is Scope.ORG:
        assert rule.org_role is not None
        if org_role.rank < rule.org_role.rank:
            raise Forbidden(f"this needs the org role '{rule.org_role}' or higher")
        return
    if project_role is None:
        raise NotFound("project not found")
    assert rule.project_role is not None
    if project_role.rank < rule.project_role.rank:
        raise Forbidden(f"this needs the project role '{rule.project_role}' or higher")


def scope_of(permission: Permission) -> Scope:
    return RULES[permission].scope
