"""`dagship s3 sync`: one DAG-only deploy (origin s3) of an S3 prefix, against a real dagship
server and a real S3 API (moto's server mode); every bad input deploys nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagship.integrations.s3.bucket import (
    S3SyncError,
    check_key_path,
    decode_key,
    download,
    list_objects,
    parse_s3_url,
)
from tests.conftest import ServerFactory
from tests.helpers import Api, Cli, Server, assert_error, entry, sha256, unique
from tests.s3_helpers import MotoS3

DAG = b"from airflow.sdk import dag\n\n@dag()\ndef %s():\n    pass\n\n%s()\n"


def dag(name: str) -> bytes:
    return DAG % (name.encode(), name.encode())


@pytest.fixture
def s3_env(moto_s3: MotoS3, tmp_path: Path) -> dict[str, str]:
    return {**moto_s3.env(), "DAGSHIP_CACHE_DIR": str(tmp_path / "cache")}


def put(moto_s3: MotoS3, bucket: str, files: dict[str, bytes], **extra: Any) -> None:
    client = moto_s3.client()
    for key, data in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def sync(cli: Cli, env: dict[str, str], url: str, name: str, *more: str) -> Any:
    return cli("s3", "sync", url, "--deployment", name, *more, env=env)


def test_sync_deploys_the_prefix_once_and_reads_only_what_changed(
    cli: Cli, api: Api, moto_s3: MotoS3, s3_env: dict[str, str]
) -> None:
    bucket = moto_s3.new_bucket(versioned=True)
    files = {f"dags/{n}.py": dag(n) for n in ("a", "b", "c")}
    put(moto_s3, bucket, {**files, "dags/.dagshipignore": b"scratch/\n"})
    put(moto_s3, bucket, {"dags/scratch/notes.txt": b"not deployed", "other/x.py": b"outside"})
    name = unique()
    api.create_deployment(name)
    url = f"s3://{bucket}/dags"

    first = sync(cli, s3_env, url, name, "--json").ok().json()
    assert first["deployed"] is True and first["origin"] == "s3" and first["kind"] == "dags"
    assert first["read_objects"] == 4  # the files deployed; the ignored one is never read
    deployed = api.manifest(first["dags_version"])
    assert sorted(deployed) == [".dagshipignore", "a.py", "b.py", "c.py"]
    assert deployed["a.py"]["sha256"] == sha256(files["dags/a.py"])
    source = first["s3_source"]
    assert source["bucket"] == bucket and source["prefix"] == "dags/"
    newest = moto_s3.client().head_object(Bucket=bucket, Key=source["newest_key"])
    assert source["newest_version_id"] == newest["VersionId"]
    assert source["newest_modified_at"].endswith("Z")

    again = sync(cli, s3_env, url, name).ok()
    assert "Nothing changed" in again.out and "No deploy made" in again.out
    assert api.deploy_count(name) == 1

    put(moto_s3, bucket, {"dags/b.py": dag("b_changed")})
    third = sync(cli, s3_env, url, name, "--json").ok().json()
    assert third["seq"] == 2 and third["read_objects"] == 1
    assert third["read_bytes"] == len(dag("b_changed"))
    assert third["uploaded_files"] == 1
    assert api.manifest(third["dags_version"])["b.py"]["sha256"] == sha256(dag("b_changed"))


def test_s3_sha256_checksums_are_used_without_reading(
    cli: Cli, api: Api, moto_s3: MotoS3, s3_env: dict[str, str]
) -> None:
    bucket = moto_s3.new_bucket()
    put(moto_s3, bucket, {"x.py": dag("x"), "y.py": dag("y")}, ChecksumAlgorithm="SHA256")
    name = unique()
    api.create_deployment(name)
    result = sync(cli, s3_env, f"s3://{bucket}", name, "--json").ok().json()
    assert result["read_objects"] == 0, "S3's full-object SHA-256 should be used as the digest"
    assert api.manifest(result["dags_version"])["y.py"]["sha256"] == sha256(dag("y"))
    assert result["s3_source"]["newest_version_id"] is None  # an unversioned bucket


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("p/../escape.py", "'..'"),
        ("p//absolute.py", "absolute"),
        ("p/back\\slash.py", "backslash"),
    ],
)
def test_a_bad_key_deploys_none_of_the_prefix(
    cli: Cli, api: Api, moto_s3: MotoS3, s3_env: dict[str, str], key: str, reason: str
) -> None:
    bucket = moto_s3.new_bucket()
    put(moto_s3, bucket, {"p/good.py": dag("good"), key: dag("bad")})
    name = unique()
    api.create_deployment(name)
    result = sync(cli, s3_env, f"s3://{bucket}/p", name).failed(repr(key), "nothing was deployed")
    assert reason.lower() in result.err.lower()
    assert api.deploy_count(name) == 0
    assert api.missing([sha256(dag("good"))]) == [sha256(dag("good"))], "nothing uploaded"


def test_an_ignored_bad_key_does_not_stop_the_sync(
    cli: Cli, api: Api, moto_s3: MotoS3, s3_env: dict[str, str]
) -> None:
    bucket = moto_s3.new_bucket()
    put(moto_s3, bucket, {"ok.py": dag("ok"), "tmp/a\\b": b"x", ".dagshipignore": b"tmp/\n"})
    name = unique()
    api.create_deployment(name)
    result = sync(cli, s3_env, f"s3://{bucket}", name, "--json").ok().json()
    assert sorted(api.manifest(result["dags_version"])) == [".dagshipignore", "ok.py"]


def test_an_object_over_the_size_limit_deploys_nothing(
    make_server: ServerFactory, moto_s3: MotoS3, s3_env: dict[str, str]
) -> None:
    srv = make_server("sqlite", env={"DAGSHIP_MAX_BLOB_SIZE": "1024"})
    api, cli = srv.api(), Cli(srv.url, srv.admin_token)
    bucket = moto_s3.new_bucket()
    put(moto_s3, bucket, {"small.py": dag("small"), "big.csv": b"x" * 1025})
    name = unique()
    api.create_deployment(name)
    sync(cli, s3_env, f"s3://{bucket}", name).failed("'big.csv'", "1,025 bytes", "1,024")
    assert api.deploy_count(name) == 0


def test_missing_bucket_and_empty_prefix_are_clear_errors(
    cli: Cli, api: Api, moto_s3: MotoS3, s3_env: dict[str, str]
) -> None:
    name = unique()
    api.create_deployment(name)
    sync(cli, s3_env, "s3://no-such-bucket-anywhere/dags", name).failed(
        "s3://no-such-bucket-anywhere/dags/", "bucket does not exist"
    )
    bucket = moto_s3.new_bucket()
    put(moto_s3, bucket, {"elsewhere/a.py": dag("a")})
    sync(cli, s3_env, f"s3://{bucket}/dags", name).failed(f"s3://{bucket}/dags/", "no objects")
    cli("s3", "sync", "https://not-s3/x", "--deployment", name, env=s3_env).failed("s3://")
    assert api.deploy_count(name) == 0


def test_wrong_credentials_are_a_clear_error(
    cli: Cli, api: Api, tmp_path: Path, s3_env: dict[str, str]
) -> None:
    strict = MotoS3(tmp_path / "moto.log", env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}).start()
    try:
        name = unique()
        api.create_deployment(name)
        env = {**s3_env, "DAGSHIP_S3_ENDPOINT_URL": strict.url}
        sync(cli, env, "s3://some-bucket/dags", name).failed(
            "refused access", "credentials", "nothing was deployed"
        )
        assert api.deploy_count(name) == 0
    finally:
        strict.close()


def test_an_object_deleted_after_the_listing_is_named(moto_s3: MotoS3, tmp_path: Path) -> None:
    bucket = moto_s3.new_bucket(versioned=True)
    put(moto_s3, bucket, {"p/a.py": dag("a"), "p/b.py": dag("b")})
    s3 = moto_s3.client()
    location = parse_s3_url(f"s3://{bucket}/p")
    listed = list_objects(s3, location)
    gone = next(obj for obj in listed if obj.key == "p/b.py")
    s3.delete_object(Bucket=bucket, Key="p/b.py", VersionId=gone.version_id)
    with pytest.raises(S3SyncError, match=r"'p/b.py' was deleted or replaced"):
        download(s3, location, gone, tmp_path / "b")


@pytest.mark.parametrize("path", ["ctrl\x07bell.py", "nul\x00.py", "del\x7f.py"])
def test_keys_with_control_characters_are_refused(path: str) -> None:
    # Checked without S3: moto cannot list such keys (it answers 500), real S3 lists them
    # URL-encoded (EncodingType=url) and the sync refuses them before reading anything.
    with pytest.raises(S3SyncError, match=r"cannot be deployed .*nothing was deployed"):
        check_key_path("p/" + path, path)


def test_non_utf8_key_names_are_refused() -> None:
    # S3 lists keys URL-encoded; bytes that are not UTF-8 cannot be a path in a bundle.
    assert decode_key("dags/caf%C3%A9.py") == "dags/café.py"
    with pytest.raises(S3SyncError, match=r"not UTF-8"):
        decode_key("dags/caf%E9.py")


def test_origin_s3_needs_its_source_and_dags_only(server: Server, api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    files = {"a.py": dag("a")}
    source = {"bucket": "bkt", "prefix": "dags/"}
    r = api.deploy_files(name, files, origin="s3")
    assert "s3_source" in assert_error(r, 422)["detail"]
    assert_error(api.deploy_files(name, files, origin="cli", s3_source=source), 422)
    assert_error(api.deploy_files(name, files, kind="full", origin="s3", s3_source=source), 422)
    assert api.deploy_count(name) == 0
    ok = api.deploy_files(name, files, origin="s3", s3_source=source)
    assert ok.status_code == 201, ok.text
    assert ok.json()["s3_source"]["bucket"] == "bkt"
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": [entry("b.py", dag("a"))], "origin": "cli"},
    )
    assert r.status_code == 201 and r.json()["s3_source"] is None
