"""POST /blobs/batch: many blobs in one verified stream, from the local store and from S3."""

from __future__ import annotations

import gzip
import os

import httpx
import pytest

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError, BlobBatchError
from dagship.core import blobstream
from tests.helpers import Api, Server, assert_error, sha256, unique
from tests.s3_helpers import S3Server

BATCH = "/blobs/batch"


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(storage: str, server: Server, s3_server: S3Server) -> Server:
    """Every test here runs on the local store and on S3 (one shared server each)."""
    return s3_server if storage == "s3" else server


@pytest.fixture
def api(server: Server) -> Api:
    return server.api()


def _blobs(api: Api, count: int, size: int = 100) -> dict[str, bytes]:
    blobs = {}
    for i in range(count):
        data = f"# file {i} {unique()}\n".encode() * (size // 20) + os.urandom(8)
        blobs[api.upload(data)] = data
    return blobs


def test_a_batch_is_one_verified_stream_gzipped_when_accepted(server: Server, api: Api) -> None:
    blobs = _blobs(api, 30, size=2000)
    digests = list(blobs)
    plain = api.post(BATCH, json={"digests": digests}, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"] == blobstream.MEDIA_TYPE
    assert "content-encoding" not in plain.headers
    expected = {digest: len(data) for digest, data in blobs.items()}
    records = list(blobstream.read_blobs([plain.content], expected))
    assert records == list(blobs.items())  # in request order
    assert len(plain.content) == sum(map(len, blobs.values())) + 30 * blobstream.HEADER_SIZE

    # The same blobs gzipped: fewer bytes on the wire, the same records.
    with httpx.Client(base_url=server.url, headers=_auth(server.admin_token)) as raw:
        request = raw.build_request("POST", "/api/v1" + BATCH, json={"digests": digests})
        request.headers["Accept-Encoding"] = "gzip"
        zipped = raw.send(request, stream=True)
        wire = b"".join(zipped.iter_raw())
    assert zipped.headers["content-encoding"] == "gzip"
    assert len(wire) < len(plain.content) / 2
    assert gzip.decompress(wire) == plain.content

    # Through the client: repeats dropped, every blob once.
    with ApiClient(server.url, server.admin_token) as client:
        got = dict(client.get_blobs(digests + digests[:5], expected))
    assert got == blobs


def test_unknown_blobs_are_a_404_listing_them_before_anything_is_sent(api: Api) -> None:
    have = list(_blobs(api, 2))
    unknown = [sha256(os.urandom(8)) for _ in range(2)]
    err = assert_error(api.post(BATCH, json={"digests": [have[0], *unknown, have[1]]}), 404)
    assert err["missing"] == unknown


@pytest.mark.parametrize(
    "body",
    [{}, {"digests": []}, {"digests": ["nothex"]}, {"digests": ["a" * 64] * 1001}],
    ids=["no-list", "empty", "bad-digest", "over-1000"],
)
def test_bad_lists_are_422(api: Api, body: dict[str, object]) -> None:
    assert_error(api.post(BATCH, json=body), 422, "invalid")


def test_same_auth_as_a_blob_download(server: Server, api: Api) -> None:
    name = unique("batch")
    api.create_deployment(name)
    files = {f"f{i}.py": f"x = {i}  # {unique()}\n".encode() for i in range(3)}
    assert api.deploy_files(name, files).status_code == 201
    deployed = [sha256(data) for data in files.values()]
    elsewhere = api.upload(b"not deployed here " + os.urandom(8))
    assert_error(api.with_token(None).post(BATCH, json={"digests": deployed}), 401)
    bound = api.with_token(api.create_token("viewer", deployment=name))
    r = bound.post(BATCH, json={"digests": deployed})
    assert r.status_code == 200, r.text
    records = blobstream.read_blobs([r.content], dict.fromkeys(deployed, -1))
    assert [digest for digest, _ in records] == deployed
    # A bound token reads only its deployment's blobs: any other one is "not stored".
    err = assert_error(bound.post(BATCH, json={"digests": [*deployed, elsewhere]}), 404)
    assert err["missing"] == [elsewhere]


def test_a_blob_damaged_in_the_store_cuts_the_stream(storage: str, server: Server) -> None:
    if storage != "file":
        pytest.skip("damages a file of the local store")
    api = server.api()
    blobs = _blobs(api, 3)
    damaged = list(blobs)[1]
    path = server.stored_blob_files()[damaged]
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with ApiClient(server.url, server.admin_token) as client:
        received = []
        with pytest.raises(BlobBatchError, match=r"downloading blobs from .* failed"):
            for digest, _ in client.get_blobs(blobs):
                received.append(digest)
    assert damaged not in received


def test_the_client_says_which_blobs_are_unknown(server: Server) -> None:
    unknown = sha256(os.urandom(8))
    with ApiClient(server.url, server.admin_token) as client, pytest.raises(ApiError) as caught:
        list(client.get_blobs([unknown]))
    assert caught.value.status == 404 and caught.value.body["missing"] == [unknown]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
