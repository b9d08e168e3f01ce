"""The CLI's hints for the server's error codes (cli/hints.py); the CLI tests show them in use."""

from __future__ import annotations

from dagship.cli.hints import HINTS, STATE_HINTS, message, state_message
from dagship.client.errors import ApiError, ClientError
from dagship.core.vocabulary import AirflowState, ErrorCode


def test_a_hint_follows_the_detail_with_the_fields_of_the_answer() -> None:
    body = {"detail": "token has role dag-author; project deploys need operator",
            "code": "role_required", "role": "dag-author", "required_role": "operator"}  # fmt: skip
    exc = ApiError(403, "role_required", body["detail"], body)
    assert message(exc) == (
        "token has role dag-author; project deploys need operator; "
        "create one with `dagship token create --role operator`"
    )


def test_no_hint_without_its_fields_or_for_other_codes() -> None:
    # An older server: the code, but not the field the hint needs.
    assert message(ApiError(409, "seq_conflict", "at seq 3", {"current_seq": 3})) == "at seq 3"
    assert message(ApiError(404, "not_found", "deploy dpl_x does not exist")) == (
        "deploy dpl_x does not exist"
    )
    assert message(ClientError("plain")) == "plain"


def test_every_hint_is_for_a_code_of_the_api() -> None:
    assert set(HINTS) <= set(ErrorCode)
    assert set(STATE_HINTS) <= set(AirflowState)


def test_state_hints() -> None:
    status = {
        "state": "no_airflow",
        "deployment": "dev",
        "detail": "deployment dev has no Airflow URL",
    }
    assert state_message(status) == (
        "deployment dev has no Airflow URL; set one with "
        "`dagship deployment update dev --airflow-url URL`"
    )
    parsed = {"state": "parsed", "deployment": "dev", "detail": "Airflow parsed all 1"}
    assert state_message(parsed) == "Airflow parsed all 1"
