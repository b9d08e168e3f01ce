"""ApiClient.get_blob streams: chunks, never the whole blob at once; errors before the first.
ApiClient.get_blobs: many blobs in batches, each verified."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError, BlobBatchError
from dagship.core import blobstream
from tests.helpers import Api, CountingTransport, Server, sha256


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


def test_get_blobs_drops_repeats_and_asks_in_batches(
    server: Server, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = {api.upload(data): data for data in (os.urandom(100 + i) for i in range(5))}
    digests = list(blobs)
    monkeypatch.setattr(blobstream, "MAX_DIGESTS", 2)
    counter = CountingTransport()
    with ApiClient(server.url, server.admin_token, transport=counter) as client:
        got = list(client.get_blobs(digests + list(reversed(digests))))
    assert got == list(blobs.items())
    assert counter.paths == ["POST /api/v1/blobs/batch"] * 3


def test_get_blobs_checks_the_sizes_it_was_given(server: Server, api: Api) -> None:
    digest = api.upload(os.urandom(64))
    with (
        ApiClient(server.url, server.admin_token) as client,
        pytest.raises(BlobBatchError, match="64 bytes; 65 were expected"),
    ):
        list(client.get_blobs([digest], {digest: 65}))
