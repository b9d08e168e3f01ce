"""ApiClient.get_blob streams: chunks, never the whole blob at once; errors before the first."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from tests.helpers import Api, Server, sha256


def test_get_blob_streams_in_chunks(server: Server, api: Api) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = api.upload(data)
    with ApiClient(server.url, server.admin_token) as client:
        chunks = client.get_blob(digest)
        assert isinstance(chunks, Iterator)
        received = list(chunks)
    assert len(received) > 1 and max(len(c) for c in received) <= 1024 * 1024
    assert b"".join(received) == data


def test_get_blob_of_an_unknown_digest_raises_at_once(server: Server) -> None:
    with ApiClient(server.url, server.admin_token) as client, pytest.raises(ApiError) as caught:
        client.get_blob(sha256(os.urandom(8)))
    assert caught.value.status == 404 and caught.value.code == "not_found"
