"""Each command that makes (or keeps) a deploy prints one true summary line, with or without
--wait: nothing claims an upload, promotion or rollback that did not happen."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Api, Cli, unique, write

# Claims the commands made on stderr after their summary, whatever had happened.
FALSE_CLAIMS = ("Uploaded:", "Promoted:", "Rolled back:")


def _no_second_claim(err: str) -> None:
    for claim in FALSE_CLAIMS:
        assert claim not in err, err


def test_unchanged_deploy_with_wait_says_only_unchanged(cli: Cli, api: Api, project: Path) -> None:
    name = unique("sum")
    api.create_deployment(name)
    first = cli("deploy", project, "--no-parse", "-d", name, "--json").ok().json()
    # No Airflow and no agent: the wait cannot succeed, but the summary stays true.
    again = cli("deploy", project, "--no-parse", "-d", name, "--wait", "--timeout", "5")
    assert again.out == f"Deployment {name} is unchanged (deploy #1); nothing to deploy.\n"
    _no_second_claim(again.err)
    assert f"Following deploy {first['id']} in Airflow (timeout 5s)." in again.err


def test_preview_deploy_unchanged_with_wait_says_only_unchanged(
    cli: Cli, api: Api, project: Path
) -> None:
    source, branch = unique("src"), f"feature/{unique('sum')}"
    api.create_deployment(source)
    cli("deploy", project, "--no-parse", "-d", source).ok()
    created = cli("preview", "create", "--from", source, "--name", branch, "--json").ok().json()
    name = created["preview"]["name"]
    result = cli(
        "preview", "deploy", project, "--name", branch, "--no-parse", "--wait", "--timeout", "5"
    )
    assert result.out == f"Deployment {name} is unchanged (deploy #1); nothing to deploy.\n"
    _no_second_claim(result.err)


def test_promote_and_rollback_with_wait_print_one_true_line(
    cli: Cli, api: Api, project: Path
) -> None:
    dev, prod = unique("dev"), unique("prod")
    api.create_deployment(dev)
    api.create_deployment(prod)
    source = cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    wait = ("--wait", "--timeout", "5")

    promoted = cli("promote", "--from", dev, "--to", prod, *wait)
    first = api.deploys(prod)[0]
    assert promoted.out == (
        f"Promoted {dev} deploy #1 ({source['id']}) to {prod}: deploy #1 ({first['id']}), "
        "full, nothing uploaded.\n"
    )
    _no_second_claim(promoted.err)

    again = cli("promote", "--from", dev, "--to", prod, *wait)
    assert again.out == (
        f"Deployment {prod} (deploy #1) already runs the versions of {dev} deploy #1 "
        f"({source['id']}); nothing to promote.\n"
    )
    _no_second_claim(again.err)
    assert api.deploy_count(prod) == 1

    dry = cli("promote", "--from", dev, "--to", prod, "--dry-run", *wait).ok()
    assert dry.out == again.out

    write(project, "dags/dag_0.py", "# second\n")
    cli("deploy", project, "--no-parse", "-d", prod).ok()
    rolled = cli("rollback", prod, *wait)
    back = api.deploys(prod)[0]
    assert rolled.out == (
        f"Rolled back {prod} to deploy #1 ({first['id']}): deploy #3 ({back['id']}), "
        f"DAGs {back['dags_version'][:19]}, project {back['project_version'][:19]}.\n"
    )
    _no_second_claim(rolled.err)

    unchanged = cli("rollback", prod, "--to", "1", *wait)
    assert unchanged.out == (
        f"Deployment {prod} (deploy #3) already runs the versions of deploy #1 "
        f"({first['id']}); nothing to roll back.\n"
    )
    _no_second_claim(unchanged.err)
    assert api.deploy_count(prod) == 3
