"""AirflowClient against Airflow's REST API as httpx.MockTransport plays it: logging in (with a
password, or with the all-admins token), health, and lists longer than one page. The real
Airflow answers the same calls in tests/airflow/ and tests/cli/quickstart_test.py."""

from __future__ import annotations

import json

import httpx
import pytest

from dagship.airflow_api.client import AirflowClient, AirflowError, AirflowLoginError


def airflow(*, password: str | None, all_admins: bool, errors: int = 0) -> httpx.MockTransport:
    """Airflow's simple auth manager (user ``admin`` with ``password``; all-admins mode lets
    ``GET /auth/token`` hand out a token) in front of ``errors`` import errors."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/auth/token" and request.method == "POST":
            given = json.loads(request.content)
            if password is not None and given == {"username": "admin", "password": password}:
                return httpx.Response(201, json={"access_token": "jwt-password"})
            return httpx.Response(401, json={"detail": "Invalid credentials"})
        if path == "/auth/token":
            if all_admins:
                return httpx.Response(201, json={"access_token": "jwt-all-admins"})
            return httpx.Response(403, json={"detail": "Forbidden"})
        if path == "/api/v2/monitor/health":
            return httpx.Response(200, json={"metadatabase": {"status": "healthy"}})
        if request.headers.get("Authorization", "") not in (
            "Bearer jwt-password",
            "Bearer jwt-all-admins",
        ):
            return httpx.Response(401, json={"detail": "Not authenticated"})
        assert path == "/api/v2/importErrors"
        limit = min(int(request.url.params["limit"]), 100)
        offset = int(request.url.params["offset"])
        items = [
            {"filename": f"e{i}.py", "stack_trace": "boom", "bundle_name": "dagship-local"}
            for i in range(errors)
        ]
        page = items[offset : offset + limit]
        return httpx.Response(200, json={"import_errors": page, "total_entries": errors})

    return httpx.MockTransport(handle)


def test_every_page_of_import_errors_is_read() -> None:
    transport = airflow(password="s3cret", all_admins=False, errors=150)
    with AirflowClient("http://af", username="admin", password="s3cret", transport=transport) as c:
        errors = c.import_errors("dagship-local")
    assert [e["filename"] for e in errors] == [f"e{i}.py" for i in range(150)]


def old_airflow() -> httpx.MockTransport:
    """Airflow 3.0's API: no bundle filters on DAGs or import errors (it ignores them)."""
    dags = [
        {"dag_id": "a", "bundle_name": "dagship-prod", "bundle_version": "sha256-new"},
        {"dag_id": "b", "bundle_name": "dagship-prod", "bundle_version": "sha256-old"},
        {"dag_id": "c", "bundle_name": "dags-folder", "bundle_version": None},
    ]
    errors = [
        {"filename": "x.py", "stack_trace": "boom", "bundle_name": "dagship-prod"},
        {"filename": "y.py", "stack_trace": "boom", "bundle_name": "dags-folder"},
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/dags":
            return httpx.Response(200, json={"dags": dags, "total_entries": len(dags)})
        return httpx.Response(200, json={"import_errors": errors, "total_entries": len(errors)})

    return httpx.MockTransport(handle)


def test_bundle_filters_hold_where_airflow_ignores_them() -> None:
    with AirflowClient("http://af", token="t", transport=old_airflow()) as client:
        assert [d["dag_id"] for d in client.dags("dagship-prod", "sha256-new")] == ["a"]
        assert [d["dag_id"] for d in client.dags("dagship-prod")] == ["a", "b"]
        assert len(client.dags()) == 3
        assert [e["filename"] for e in client.import_errors("dagship-prod")] == ["x.py"]
        assert len(client.import_errors()) == 2


def test_all_admins_mode_needs_no_password() -> None:
    transport = airflow(password=None, all_admins=True, errors=1)
    with AirflowClient("http://af", username="admin", password=None, transport=transport) as c:
        assert len(c.import_errors()) == 1


def test_a_refused_login_says_so() -> None:
    transport = airflow(password="s3cret", all_admins=False)
    with (
        AirflowClient("http://af", username="admin", password="wrong", transport=transport) as c,
        pytest.raises(AirflowLoginError, match="refused the username and password") as refused,
    ):
        c.import_errors()
    # The name is not repeated: the dagship server passes the message on to its clients.
    assert "admin" not in str(refused.value) and "HTTP 401" in str(refused.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="<h1>internal page: secret=hunter2</h1>"),
        httpx.Response(200, text="<h1>internal page: secret=hunter2</h1>"),
        httpx.Response(200, json=["secret=hunter2"]),
        httpx.Response(200, json={"import_errors": "secret=hunter2", "total_entries": 1}),
        httpx.Response(200, json={"import_errors": [], "total_entries": "hunter2"}),
    ],
)
def test_an_answer_that_is_an_error_or_not_airflows_is_an_error_without_its_body(
    answer: httpx.Response,
) -> None:
    transport = httpx.MockTransport(lambda _request: answer)
    with AirflowClient("http://af", transport=transport) as c, pytest.raises(AirflowError) as e:
        c.import_errors()
    assert "hunter2" not in str(e.value) and "http://af" in str(e.value)


def test_health_needs_no_login_and_is_none_while_nothing_answers() -> None:
    transport = airflow(password="s3cret", all_admins=False)
    with AirflowClient("http://af", transport=transport) as c:
        assert c.health() == {"metadatabase": {"status": "healthy"}}
    with AirflowClient("http://127.0.0.1:1") as c:
        assert c.health() is None
