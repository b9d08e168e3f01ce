"""The S3 blob store: a killed upload leaves nothing visible; a bucket the server cannot use
stops it at start with a sentence naming the URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import SERVER_PYTHON, clean_env, entry, sha256, unique
from tests.s3_helpers import MotoS3, S3Server
from tests.server.crash_test import raw_request


def wait_for_staging(srv: S3Server, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.staging.exists() and any(srv.staging.iterdir()):
            return True
        time.sleep(0.02)
    return False


def test_killed_upload_to_s3_leaves_nothing_visible(moto_s3: MotoS3, tmp_path: Path) -> None:
    srv = S3Server(tmp_path / "home", moto_s3).start()
    try:
        api = srv.api()
        kept = api.upload(b"uploaded before the crash")
        data = os.urandom(4 * 1024 * 1024)
        digest = sha256(data)
        sock = raw_request(srv, "PUT", f"/blobs/{digest}", data, send=len(data) // 2)
        try:
            assert wait_for_staging(srv), "the server should stage uploads before S3 sees them"
            srv.kill()
        finally:
            sock.close()
        assert digest not in srv.stored_blob_files()

        srv.start()
        api = srv.api()
        # Only the blob uploaded whole is in the bucket; the staging file is gone.
        assert srv.object_keys() == [f"blobs/{kept[:2]}/{kept}"]
        assert list(srv.staging.iterdir()) == []
        assert api.missing([digest, kept]) == [digest]
        assert api.get(f"/blobs/{digest}").status_code == 404
        assert api.upload(data) == digest
        assert api.get(f"/blobs/{digest}").content == data
        name = unique()
        api.create_deployment(name)
        r = api.post(
            f"/deployments/{name}/deploys",
            json={"kind": "dags", "dags_manifest": [entry("big.bin", data)], "origin": "cli"},
        )
        assert r.status_code == 201, r.text
    finally:
        srv.close()


def start_failing(env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "DAGSHIP_HOME": str(home), **env}
    return subprocess.run(
        [SERVER_PYTHON, "-m", "dagship", "server", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_bucket_stops_the_server_at_start(moto_s3: MotoS3, tmp_path: Path) -> None:
    env = {**moto_s3.env(), "DAGSHIP_STORAGE_URL": "s3://no-such-bucket-here/blobs"}
    done = start_failing(env, tmp_path / "home")
    assert done.returncode == 2, done.stderr
    assert "s3://no-such-bucket-here/blobs" in done.stderr
    assert "bucket no-such-bucket-here does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_storage_url_without_a_bucket_is_refused(moto_s3: MotoS3, tmp_path: Path) -> None:
    done = start_failing({**moto_s3.env(), "DAGSHIP_STORAGE_URL": "s3:///blobs"}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "names no bucket" in done.stderr and "Traceback" not in done.stderr


def test_core_install_without_boto3_still_imports_the_server() -> None:
    # boto3 hidden: the server package and the file store import; only s3:// needs it.
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "import dagship.server.app, dagship.server.store as s\n"
        "try:\n    s.open_store('s3://b/p')\nexcept Exception as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'dagship[s3]'" in done.stdout
