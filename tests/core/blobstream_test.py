"""The blob stream's format: what the writer frames, the reader takes back, verified."""

from __future__ import annotations

import hashlib
import os

import pytest

from dagship.core import blobstream
from dagship.core.blobstream import BlobStreamError, read_blobs, write_blobs


def _blobs(*contents: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(data).hexdigest(): data for data in contents}


def _stream(blobs: dict[str, bytes]) -> bytes:
    return b"".join(write_blobs((d, len(data), [data]) for d, data in blobs.items()))


def test_round_trip_in_any_chunking() -> None:
    blobs = _blobs(b"", b"a", os.urandom(300_000), b"x = 1\n" * 50)
    stream = _stream(blobs)
    assert len(stream) == sum(map(len, blobs.values())) + 4 * blobstream.HEADER_SIZE
    sizes = {d: len(data) for d, data in blobs.items()}
    for size in (1, 7, 40, 65536, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert list(read_blobs(chunks, sizes)) == list(blobs.items())


def test_a_record_is_digest_size_then_bytes() -> None:
    data = b"hello"
    digest = hashlib.sha256(data).hexdigest()
    assert _stream({digest: data}) == bytes.fromhex(digest) + (5).to_bytes(8, "big") + data


@pytest.mark.parametrize(
    ("cut", "message"),
    [(-3, "cut inside a record, after 1 of 2"), (-(40 + 5), "cut between records, after 1 of 2")],
    ids=["inside", "between"],
)
def test_a_cut_stream_is_an_error(cut: int, message: str) -> None:
    blobs = _blobs(b"first", b"later")
    stream = _stream(blobs)[:cut]
    with pytest.raises(BlobStreamError, match=message) as caught:
        list(read_blobs([stream], dict.fromkeys(blobs, -1)))
    assert caught.value.digest == list(blobs)[1]


def test_bytes_that_do_not_hash_to_their_digest_are_refused() -> None:
    digest = hashlib.sha256(b"right").hexdigest()
    stream = b"".join(write_blobs([(digest, 5, [b"wrong"])]))
    with pytest.raises(BlobStreamError, match="hash to something else"):
        list(read_blobs([stream], {digest: 5}))


def test_unasked_blobs_and_wrong_sizes_are_refused() -> None:
    blobs = _blobs(b"asked", b"other")
    asked, _ = blobs
    with pytest.raises(BlobStreamError, match="not asked for"):
        list(read_blobs([_stream(blobs)], {asked: 5}))
    with pytest.raises(BlobStreamError, match="4 were expected"):
        list(read_blobs([_stream({asked: b"asked"})], {asked: 4}))


def test_the_writer_stops_at_a_blob_that_is_not_its_size() -> None:
    digest = hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(BlobStreamError, match="2 of its 3 bytes"):
        list(write_blobs([(digest, 3, [b"ab"])]))
    with pytest.raises(BlobStreamError, match="more than its 3 bytes"):
        list(write_blobs([(digest, 3, [b"abcd"])]))
