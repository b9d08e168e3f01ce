"""FastAPI dependencies, as Annotated aliases so routes read as a sentence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dagship.core.vocabulary import Role
from dagship.server import guard
from dagship.server.db.engine import Database
from dagship.server.events import DeployEvents
from dagship.server.secret_box import SecretBox
from dagship.server.services import access
from dagship.server.services.access import AuthToken
from dagship.server.services.airflow import AirflowFollower
from dagship.server.services.verified_tokens import VerifiedTokens
from dagship.server.settings import Settings
from dagship.server.store import BlobStore


# Getters and checks that do no I/O are async: FastAPI runs a plain function in its thread
# pool, a hop that costs more than they do, and every held long poll renews through them.
async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_store(request: Request) -> BlobStore:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_airflow(request: Request) -> AirflowFollower:
    return request.app.state.airflow


async def get_events(request: Request) -> DeployEvents:
    return request.app.state.events


async def get_secrets(request: Request) -> SecretBox:
    return request.app.state.secrets


async def get_verified_tokens(request: Request) -> VerifiedTokens:
    return request.app.state.verified_tokens


DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AirflowDep = Annotated[AirflowFollower, Depends(get_airflow)]
EventsDep = Annotated[DeployEvents, Depends(get_events)]
SecretsDep = Annotated[SecretBox, Depends(get_secrets)]
VerifiedTokensDep = Annotated[VerifiedTokens, Depends(get_verified_tokens)]


def get_session(database: DatabaseDep) -> Iterator[Session]:
    with database.read_session() as session:
        yield session


def get_write_session(database: DatabaseDep) -> Iterator[Session]:
    """A session whose transaction takes the write lock up front (see db/engine.py)."""
    with database.write_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


async def get_current_token(
    request: Request, database: DatabaseDep, cache: VerifiedTokensDep
) -> AuthToken:
    # A request with a body was authenticated by the guard before the body was read.
    checked = request.scope.get("state", {}).get(guard.TOKEN_KEY)
    if isinstance(checked, AuthToken):
        return checked
    # A token verified lately is answered here; only the others take a thread and the database.
    header = request.headers.get("authorization")
    known = guard.verified(cache, header)
    if known is not None:
        return known
    return await run_in_threadpool(guard.authenticate, database, cache, header)


CurrentToken = Annotated[AuthToken, Depends(get_current_token)]


def require_role(role: Role, action: str) -> Callable[..., Awaitable[AuthToken]]:
    """A dependency allowing tokens with at least `role`, bound to the route's deployment."""

    async def dependency(request: Request, token: CurrentToken) -> AuthToken:
        access.check_role(token, role, action)
        name = request.path_params.get("name")
        if name is not None:
            access.check_deployment(token, name)
        return token

    return dependency


Viewer = Annotated[AuthToken, Depends(require_role(Role.VIEWER, "reads"))]
# The one write a viewer token may make: an agent reporting its own state.
Reporter = Annotated[AuthToken, Depends(require_role(Role.VIEWER, "agent reports"))]
DagAuthor = Annotated[
    AuthToken, Depends(require_role(Role.DAG_AUTHOR, "blob uploads and DAG deploys"))
]
Operator = Annotated[AuthToken, Depends(require_role(Role.OPERATOR, "rollbacks"))]
Admin = Annotated[AuthToken, Depends(require_role(Role.ADMIN, "managing deployments and tokens"))]
