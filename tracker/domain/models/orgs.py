"""Organizations, projects and memberships."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tracker.domain.models.base import Input, Output

OrgRoleName = Literal["owner", "admin", "member"]
ProjectRoleName = Literal["viewer", "reporter", "developer", "admin"]
Visibility = Literal["org", "private"]


class OrgIn(Input):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=40)


class Org(Output):
    id: str
    slug: str
    name: str
    role: OrgRoleName | None = None
    created_at: str


class ProjectIn(Input):
    name: str = Field(min_length=1, max_length=200)
    key: str = Field(min_length=2, max_length=10, pattern=r"^[A-Za-z][A-Za-z0-9]{1,9}$")
    description: str = Field("", max_length=10_000)
    visibility: Visibility = "org"


class Project(Output):
    id: str
    key: str
    name: str
    description: str
    visibility: Visibility
    role: ProjectRoleName | None = None
    created_at: str
    updated_at: str
    version: int
