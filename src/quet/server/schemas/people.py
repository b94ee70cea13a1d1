"""People shapes: sign-in, users, passwords and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{2,100}$"


class SessionCreate(BaseModel):
    username: str = Field(max_length=100)
    password: str = Field(max_length=200)


class SessionPublic(BaseModel):
    username: str
    role: str
    org_code: str
    csrf: str = Field(description="send as X-CSRF-Token on POST/PATCH/DELETE")
    must_change_password: bool
    expires_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    role: str = Field(pattern=r"^(admin|officer|viewer)$")
    org_code: str | None = Field(None, description="default: your own organisation")
    full_name: str = Field("", max_length=200)
    email: str = Field("", max_length=200)


class UserPublic(BaseModel):
    id: int
    username: str
    full_name: str
    email: str
    role: str
    org_code: str
    active: bool
    must_change_password: bool
    created_at: datetime
    last_login: datetime | None


class UserCreated(UserPublic):
    password: str = Field(description="one-time password, shown only now")


class UserList(BaseModel):
    total: int
    items: list[UserPublic]


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class TokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used: datetime | None
    revoked: bool


class TokenCreated(TokenPublic):
    token: str = Field(description="shown only now; send as Authorization: Bearer <token>")
