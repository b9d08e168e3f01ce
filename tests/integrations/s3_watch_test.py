"""`dagship s3 watch`: the sync as a long-running loop; a failed round deploys nothing and
the next one tries again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from dagship.client.api import ApiClient
from dagship.integrations.s3.bucket import S3SyncError
from dagship.integrations.s3.sync import SyncResult
from dagship.integrations.s3.watch import watch
from tests.helpers import Api, Cli, Server, unique
from tests.s3_helpers import MotoS3


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_watch_deploys_each_change_and_survives_a_bad_round(
    server: Server, api: Api, moto_s3: MotoS3, tmp_path: Path
) -> None:
    name = unique()
    api.create_deployment(name)
    bucket = moto_s3.new_bucket()
    s3 = moto_s3.client()
    s3.put_object(Bucket=bucket, Key="dags/one.py", Body=b"one = 1\n")
    rounds: list[SyncResult | Exception] = []
    stop = threading.Event()
    client = ApiClient(server.url, server.admin_token)
    thread = threading.Thread(
        target=watch,
        args=(client, f"s3://{bucket}/dags", name, 0.5, rounds.append),
        kwargs={"stop": stop, "s3": s3, "cache_file": tmp_path / "hashes.json"},
    )
    thread.start()
    try:
        wait_for(lambda: api.deploy_count(name) == 1, "the first deploy")
        s3.put_object(Bucket=bucket, Key="dags/bad\\name.py", Body=b"x = 1\n")
        wait_for(lambda: any(isinstance(r, S3SyncError) for r in rounds), "a refused round")
        assert api.deploy_count(name) == 1
        s3.delete_object(Bucket=bucket, Key="dags/bad\\name.py")
        s3.put_object(Bucket=bucket, Key="dags/two.py", Body=b"two = 2\n")
        wait_for(lambda: api.deploy_count(name) == 2, "the deploy after the bad round")
        seen = len(rounds)
        wait_for(
            lambda: any(isinstance(r, SyncResult) and r.unchanged for r in rounds[seen:]),
            "a round with nothing new",
        )
        assert api.deploy_count(name) == 2
    finally:
        stop.set()
        thread.join(timeout=60)
        client.close()
    assert not thread.is_alive()
    latest = api.deploys(name)[0]
    assert sorted(api.manifest(latest["dags_version"])) == ["one.py", "two.py"]


def test_watch_command_refuses_a_bad_interval(cli: Cli) -> None:
    cli("s3", "watch", "s3://b/p", "--deployment", "x", "--interval", "0").usage_error("interval")
