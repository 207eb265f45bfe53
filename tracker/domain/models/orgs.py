"""Organizations, projects and memberships: request bodies, responses, list cursors."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracker.domain.models.accounts import Email
from tracker.domain.models.base import Input, Output

OrgRoleName = Literal["owner", "admin", "member"]
ProjectRoleName = Literal["viewer", "reporter", "developer", "admin"]
Visibility = Literal["org", "private"]
PROJECT_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9]{1,9}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class OrgIn(Input):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=40)


class OrgPatch(Input):
    """Rename an org or move it to a new slug (old URLs then 404; the id never changes)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=40)


class Org(Output):
    id: str
    slug: str
    name: str
    role: OrgRoleName | None = None
    created_at: str


class UserRef(Input):
    """Names an existing user by `user_id` or by `email` (exactly one of them)."""

    user_id: str | None = Field(None, pattern=UUID_PATTERN)
    email: Email | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UserRef:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of 'user_id' or 'email'")
        return self


class OrgMemberIn(UserRef):
    role: OrgRoleName = "member"


class OrgMemberPatch(Input):
    role: OrgRoleName


class OwnershipTransferIn(UserRef):
    """Make another member an owner and step down to admin, in one transaction."""


class OrgMember(Output):
    user_id: str
    email: str
    display_name: str
    role: OrgRoleName
    created_at: str


class ProjectIn(Input):
    name: str = Field(min_length=1, max_length=200)
    key: str = Field(min_length=2, max_length=10, pattern=PROJECT_KEY_PATTERN)
    description: str = Field("", max_length=10_000)
    visibility: Visibility = "org"


class ProjectPatch(Input):
    """The key is not patchable: issue keys (WEB-42) are printed in commits and mails."""

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    visibility: Visibility | None = None


class Project(Output):
    id: str
    key: str
    name: str
    description: str
    visibility: Visibility
    role: ProjectRoleName | None = None
    created_at: str
    updated_at: str
    deleted_at: str | None = None
    version: int


class ProjectMemberIn(UserRef):
    role: ProjectRoleName = "reporter"


class ProjectMemberPatch(Input):
    role: ProjectRoleName


class ProjectMember(Output):
    user_id: str
    email: str
    display_name: str
    role: ProjectRoleName
    created_at: str


class ListQuery(BaseModel):
    """`?limit=&cursor=` (query strings are text, so not strict). Frozen: a request
    without a query string shares one default instance (`tracker.http.binding.bind`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=512)


class ProjectListQuery(ListQuery):
    deleted: bool = Field(False, description="List soft-deleted projects (org owners/admins).")
