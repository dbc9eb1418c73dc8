"""Staff accounts: a name, a role and an argon2 password hash, in MongoDB (``console_users``).

Roles map onto the Tag API's scopes, so a person and an API key pass the same scope checks.
"""

import asyncio
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.auth import Scope

USER_NAME = r"^[\w.@-]{1,64}$"
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


class Role(StrEnum):
    VIEWER = "viewer"
    AGENT = "agent"
    MANAGER = "manager"  # an agent who may also set the tags the catalog keeps for managers
    ADMIN = "admin"

    @property
    def scopes(self) -> set[Scope]:
        return ROLE_SCOPES[self]


ROLE_SCOPES: dict[Role, set[Scope]] = {
    Role.VIEWER: {Scope.READ},
    Role.AGENT: {Scope.READ, Scope.TAG, Scope.ALERTS},
    Role.MANAGER: {Scope.READ, Scope.TAG, Scope.ALERTS},
    Role.ADMIN: {Scope.READ, Scope.TAG, Scope.ALERTS, Scope.ADMIN},
}


class User(BaseModel):
    name: str = Field(pattern=USER_NAME)
    role: Role
    active: bool = True


class UserExists(ValueError):
    """A user of that name exists already."""


class WeakPassword(ValueError):
    """The password is shorter than ``MIN_PASSWORD``."""


class UserStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.users = database["console_users"]

    async def ensure_indexes(self) -> None:
        await self.users.create_index([("name", ASCENDING)], unique=True)

    async def create(self, name: str, role: Role, password: str) -> User:
        if len(password) < MIN_PASSWORD:
            raise WeakPassword(f"password: give at least {MIN_PASSWORD} characters")
        user = User(name=name, role=role)
        hashed = await asyncio.to_thread(_hasher.hash, password)
        try:
            await self.users.insert_one(
                {**user.model_dump(), "password_argon2": hashed, "created_at": datetime.now(UTC)}
            )
        except DuplicateKeyError:
            raise UserExists(f"user {name!r} exists") from None
        return user

    async def verify(self, name: str, password: str) -> User | None:
        """The active user when name and password match; None otherwise."""
        document = await self.users.find_one({"name": name, "active": True}, {"_id": 0})
        stored = document["password_argon2"] if document else _DUMMY_HASH
        try:
            await asyncio.to_thread(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return User.model_validate(document) if document else None

    async def list(self) -> list[User]:
        documents = await self.users.find({}, {"_id": 0}).sort("name").to_list(None)
        return [User.model_validate(d) for d in documents]

    async def exists(self, name: str) -> bool:
        return await self.users.count_documents({"name": name}, limit=1) > 0
