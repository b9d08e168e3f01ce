"""Ten concurrent `dagship deploy` processes against one deployment: none lost, seq contiguous."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import Api, Cli, Result, dag_source, unique, write

RUNS = 10
WITH_EXPECT_SEQ = range(6, RUNS)  # these pass --expect-seq 1 and may lose the race


def test_ten_concurrent_deploys(cli: Cli, api: Api, project: Path, tmp_path: Path) -> None:
    name = unique("race")
    api.create_deployment(name)
    cli("deploy", project, "--deployment", name, "--no-parse").ok()
    copies = []
    for i in range(RUNS):
        copy = tmp_path / f"copy-{i}"
        shutil.copytree(project, copy)
        write(copy, f"dags/change_{i}.py", dag_source(f"change_{i}"))
        copies.append(copy)

    procs = []
    for i, copy in enumerate(copies):
        extra = ["--expect-seq", "1"] if i in WITH_EXPECT_SEQ else []
        procs.append(cli.popen("deploy", copy, "-d", name, "--no-parse", "--json", *extra))
    results = []
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=180)
        results.append(Result(proc.returncode, out, err, [f"deploy copy-{i}"]))

    committed: dict[int, int] = {}  # seq -> run
    for i, result in enumerate(results):
        if result.code == 0:
            out = result.json()
            assert out["unchanged"] is False
            assert out["seq"] not in committed, f"seq {out['seq']} reported twice"
            committed[out["seq"]] = i
        else:
            # Only a run that named the seq it based on may fail, and only with a clear conflict.
            assert i in WITH_EXPECT_SEQ, f"run {i} failed:\n{result.err}"
            result.failed()
            message = result.err.lower()
            assert any(w in message for w in ("seq", "conflict", "deployed in between")), message

    deploys = sorted(api.deploys(name), key=lambda d: d["seq"])
    assert [d["seq"] for d in deploys] == list(range(1, len(deploys) + 1))
    assert len(deploys) == 1 + len(committed), "a reported deploy is missing, or an extra one"
    assert sorted(committed) == list(range(2, len(deploys) + 1))
    for seq, run in committed.items():
        manifest = api.manifest(deploys[seq - 1]["dags_version"])
        assert f"change_{run}.py" in manifest
    # Every run without --expect-seq committed; at most one --expect-seq 1 run could win.
    assert sum(1 for run in committed.values() if run in WITH_EXPECT_SEQ) <= 1
    assert len(committed) >= RUNS - len(WITH_EXPECT_SEQ)
