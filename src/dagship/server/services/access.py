"""Who may do what: roles, deployment binding, and the 403 errors that explain them."""

from __future__ import annotations

from dataclasses import dataclass

from dagship.core.vocabulary import ErrorCode, Role
from dagship.server.errors import Forbidden


@dataclass(frozen=True)
class AuthToken:
    """The token a request was made with, detached from any database session."""

    id: str
    role: Role
    deployment_id: int | None
    deployment: str | None


def check_role(token: AuthToken, role: Role, action: str) -> None:
    """Raise Forbidden unless the token has `role`; `action` reads "<action> need <role>"."""
    if not token.role.allows(role):
        raise Forbidden(
            f"token has role {token.role}; {action} need {role}",
            code=ErrorCode.ROLE_REQUIRED,
            role=token.role,
            required_role=role,
        )


def check_deployment(token: AuthToken, name: str) -> None:
    """Raise Forbidden if the token is bound to a deployment other than `name`."""
    if token.deployment is not None and token.deployment != name:
        raise Forbidden(f"token is bound to deployment {token.deployment}; it cannot act on {name}")


def check_unbound(token: AuthToken, action: str) -> None:
    if token.deployment is not None:
        raise Forbidden(
            f"token is bound to deployment {token.deployment}; {action} needs a token "
            "that is not bound to a deployment"
        )


def check_may_choose_airflow_url(token: AuthToken) -> None:
    """Raise Forbidden unless the token may choose an Airflow URL: the server sends Airflow
    credentials there, so only an admin not bound to a deployment may."""
    if not token.role.allows(Role.ADMIN) or token.deployment is not None:
        bound = f", bound to deployment {token.deployment}" if token.deployment else ""
        raise Forbidden(
            f"token has role {token.role}{bound}; choosing an Airflow URL needs an admin token "
            "not bound to a deployment (the server sends Airflow credentials there)",
            code=ErrorCode.AIRFLOW_URL_ADMIN_ONLY,
            role=token.role,
            required_role=Role.ADMIN,
        )
