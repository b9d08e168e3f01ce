"""ApiClient against answers the real server never gives (httpx.MockTransport): what it sends,
a 304 it must not parse, and documents that break the contract."""

from __future__ import annotations

import json

import httpx
import pytest

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError, BadAnswerError
from dagship.core.schemas import DeploymentOut
from dagship.core.vocabulary import Role

DEPLOYMENT = {
    "name": "dev",
    "description": "",
    "dag_deploys": True,
    "airflow_url": None,
    "airflow_bundle": "dagship-dev",
    "created_at": "2026-11-26T04:30:00Z",
    "preview_source": None,
    "preview_branch": None,
    "current": None,
}


TOKEN = {
    "id": "tok_1",
    "role": "dag-author",
    "deployment": "dev",
    "description": "",
    "created_at": "2026-11-26T04:30:00Z",
    "expires_at": None,
    "revoked_at": None,
    "last_used_at": None,
    "token": "dsh_secret",
}


def client_answering(
    *answers: httpx.Response, sent: list[httpx.Request] | None = None
) -> ApiClient:
    """A client whose server gives ``answers``, one per request, and records the requests."""
    left = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(request)
        return left.pop(0)

    return ApiClient("http://dagship.test", "dsh_x", transport=httpx.MockTransport(handle))


def test_requests_carry_only_the_fields_given() -> None:
    sent: list[httpx.Request] = []
    answers = httpx.Response(200, json=DEPLOYMENT), httpx.Response(201, json=TOKEN)
    with client_answering(*answers, sent=sent) as client:
        updated = client.update_deployment("dev", description="x", airflow_url="")
        created = client.create_token(Role.DAG_AUTHOR, "dev")
    assert isinstance(updated, DeploymentOut) and updated.name == "dev"
    assert created.role == Role.DAG_AUTHOR and created.token == "dsh_secret"
    assert [json.loads(request.content) for request in sent] == [
        {"description": "x", "airflow_url": ""},
        {"role": "dag-author", "deployment": "dev"},
    ]


def test_an_unchanged_dag_version_is_none_without_a_body() -> None:
    with client_answering(httpx.Response(304)) as client:
        assert client.current_dags("dev", etag="sha256-" + "0" * 64) is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"name": "dev"}', "dag_deploys: Field required"),
        (b"[1, 2]", "Input should be a valid dictionary"),
        (b"not json", "Expecting value"),
    ],
)
def test_an_answer_that_breaks_the_contract_is_a_clear_error(body: bytes, needle: str) -> None:
    client = client_answering(httpx.Response(200, content=body))
    with client, pytest.raises(BadAnswerError) as caught:
        client.get_deployment("dev")
    message = str(caught.value)
    assert "http://dagship.test/api/v1/deployments/dev" in message and needle in message
    assert isinstance(caught.value, ApiError) and caught.value.code == "bad_answer"


def test_error_statuses_are_still_api_errors() -> None:
    answer = httpx.Response(404, json={"detail": "deployment dev does not exist", "code": "x"})
    with client_answering(answer) as client, pytest.raises(ApiError) as caught:
        client.get_deployment("dev")
    assert (caught.value.status, caught.value.code) == (404, "x")
    assert not isinstance(caught.value, BadAnswerError)
