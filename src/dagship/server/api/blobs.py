"""Blob routes: which are missing, upload (streamed, verified), download one or a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dagship.core import blobstream
from dagship.core.manifest import DIGEST_PATTERN
from dagship.core.schemas import BlobBatchRequest, BlobOut, MissingOut, MissingRequest
from dagship.core.vocabulary import Kind
from dagship.server.deps import (
    DagAuthor,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    Viewer,
    WriteSessionDep,
)
from dagship.server.errors import BadRequest, TooLarge
from dagship.server.services import blob_batch, blobs, deploys

router = APIRouter(prefix="/blobs", tags=["blobs"])

Digest = Annotated[
    str, Path(pattern=DIGEST_PATTERN, description="The sha256 of the blob, in lowercase hex.")
]
# A blob up to this size is sent from memory rather than streamed.
WHOLE_BLOB_BYTES = 256 * 1024
UPLOAD_BODY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "required": True,
}


@router.post("/missing")
def missing_blobs(
    body: MissingRequest, session: SessionDep, store: StoreDep, token: DagAuthor
) -> MissingOut:
    if body.deployment is not None:
        deploys.check_deploy_allowed(session, token, body.deployment, body.kind or Kind.FULL)
    return MissingOut(missing=blobs.missing_blobs(session, store, body.digests))


@router.post(
    "/batch",
    response_class=StreamingResponse,
    responses={200: {"content": {blobstream.MEDIA_TYPE: {}}, "description": "A blob stream"}},
)
def download_blobs(
    body: BlobBatchRequest,
    request: Request,
    database: DatabaseDep,
    store: StoreDep,
    token: Viewer,
) -> StreamingResponse:
    # A short session closed before the stream starts, as for one blob (below).
    with database.read_session() as session:
        sizes = blob_batch.readable_sizes(session, token, body.digests)
    gzip = blob_batch.accepts_gzip(request.headers.get("accept-encoding"))
    return StreamingResponse(
        blob_batch.stream(store, sizes, gzip),
        media_type=blobstream.MEDIA_TYPE,
        headers={"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if gzip else {})},
    )


@router.put(
    "/{digest}",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={200: {"model": BlobOut, "description": "Already stored"}},
)
async def upload_blob(
    digest: Digest,
    request: Request,
    response: Response,
    session: WriteSessionDep,
    store: StoreDep,
    settings: SettingsDep,
    _token: DagAuthor,
) -> BlobOut:
    blobs.check_digest(digest)
    _check_length(request.headers.get("content-length"), settings.max_blob_size, digest)
    size = await store.put(digest, request.stream(), settings.max_blob_size)
    # The bytes are in place before the row exists: a crash in between only means the
    # client uploads again, never a row pointing at nothing.
    created = await run_in_threadpool(_record, session, digest, size)
    if not created:
        response.status_code = status.HTTP_200_OK
    return BlobOut(digest=digest, size=size, created=created)


@router.get(
    "/{digest}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_blob(
    digest: Digest, database: DatabaseDep, store: StoreDep, token: Viewer
) -> Response:
    # A short session of its own, closed before the body is sent: a route session would keep
    # its database connection until then, and the body's chunks are read by the same thread
    # pool the next requests wait in. Hundreds of DAG bundles fetching a new version at once
    # would hold every connection while their bodies waited for threads, and those threads
    # for connections, until the pool's timeout.
    with database.read_session() as session:
        size = blobs.blob_size(session, digest, token)
    headers = {"Content-Length": str(size), "ETag": f'"{digest}"'}
    if size <= WHOLE_BLOB_BYTES:
        # Read here, in the route's thread: streaming costs a trip to the thread pool per
        # chunk, and a DAG file is one chunk.
        body = b"".join(store.read(digest, size))
        return Response(body, media_type="application/octet-stream", headers=headers)
    return StreamingResponse(
        store.read(digest, size), media_type="application/octet-stream", headers=headers
    )


def _record(session: Session, digest: str, size: int) -> bool:
    created = blobs.record_blob(session, digest, size)
    session.commit()
    return created


def _check_length(header: str | None, max_size: int, digest: str) -> None:
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise BadRequest(f"bad Content-Length header: {header!r}") from None
    if length > max_size:
        raise TooLarge(
            f"blob {digest} is {length} bytes, over the server's limit of {max_size} "
            "bytes (DAGSHIP_MAX_BLOB_SIZE)",
            max_size=max_size,
        )
