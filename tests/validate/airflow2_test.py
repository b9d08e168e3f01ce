"""The table of Airflow 2 -> 3 changes, checked against the real Airflow 3.3.2 of the test
interpreter: what it calls removed does not import, what it calls deprecated still does, and
every replacement it names imports (when its provider package is installed)."""

from __future__ import annotations

import importlib
import warnings
from importlib import metadata
from typing import Any

import pytest

from dagship.validate import airflow2
from dagship.validate.airflow2 import CHANGES, find, provider_distribution

pytest.importorskip("airflow")


def resolve(dotted: str) -> Any:
    """The module or object ``dotted`` names, imported the way ``from x import y`` does."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[end:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def importable(dotted: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            resolve(dotted)
        except (ImportError, AttributeError):
            return False
    return True


def installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("change", CHANGES, ids=[c.old for c in CHANGES])
def test_each_change_is_what_airflow_3_does(change: airflow2.Change) -> None:
    assert importable(change.old) is not change.required
    replacement = change.new
    if replacement is None or not replacement.startswith("airflow."):
        assert change.note or replacement, "a removal says what to do instead"
        return
    distribution = provider_distribution(replacement)
    if distribution and not installed(distribution):
        pytest.skip(f"{distribution} is not installed here")
    assert importable(replacement), replacement


def test_a_name_inside_a_moved_module_moves_with_it() -> None:
    change = find("airflow.operators.bash_operator.BashOperator")
    assert change is not None and change.old == "airflow.operators.bash_operator"
    assert (
        change.replacement("airflow.operators.bash_operator.BashOperator")
        == "airflow.providers.standard.operators.bash.BashOperator"
    )
    # A name of its own wins over its module's entry.
    renamed = find("airflow.operators.dummy.DummyOperator")
    assert renamed is not None
    assert renamed.replacement(renamed.old) == (
        "airflow.providers.standard.operators.empty.EmptyOperator"
    )
    assert find("airflow.operators.python.get_current_context") == find(
        "airflow.operators.python.get_current_context.__name__"
    )
    assert find("airflow.sdk.DAG") is None and find("airflow.models.TaskInstance") is None


def test_the_messages_name_the_replacement_and_the_package() -> None:
    change = find("airflow.hooks.postgres_hook.PostgresHook")
    assert change is not None
    assert airflow2.describe("airflow.hooks.postgres_hook.PostgresHook", change) == (
        "`airflow.hooks.postgres_hook.PostgresHook` was removed in Airflow 3: use "
        "`airflow.providers.postgres.hooks.postgres.PostgresHook` "
        "(add `apache-airflow-providers-postgres` to requirements.txt)"
    )
    # The standard provider comes with Airflow: nothing to add.
    bash = find("airflow.operators.bash.BashOperator")
    assert bash is not None
    assert airflow2.describe("airflow.operators.bash.BashOperator", bash) == (
        "`airflow.operators.bash.BashOperator` is deprecated in Airflow 3: use "
        "`airflow.providers.standard.operators.bash.BashOperator`"
    )


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("airflow.providers.amazon.aws.hooks.s3", "apache-airflow-providers-amazon"),
        ("airflow.providers.cncf.kubernetes.secret", "apache-airflow-providers-cncf-kubernetes"),
        ("airflow.providers.common.sql.operators.sql", "apache-airflow-providers-common-sql"),
        ("airflow.providers.microsoft.azure", "apache-airflow-providers-microsoft-azure"),
        ("airflow.providers.google", "apache-airflow-providers-google"),
        ("airflow.sdk", None),
        ("pandas", None),
    ],
)
def test_provider_packages_are_named_from_the_module(module: str, distribution: str) -> None:
    assert provider_distribution(module) == distribution


def test_the_removed_arguments_are_refused_by_airflow_3() -> None:
    """Each argument the table calls removed is refused by the real DAG and operators."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    for name, argument in airflow2.DAG_ARGUMENTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refused = _raises_type_error(lambda n=name: DAG(f"d_{n}", **{n: None}))
        assert refused is argument.required, name
    with DAG("operators"):
        for name, argument in airflow2.OPERATOR_ARGUMENTS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refused = _raises_type_error(lambda n=name: EmptyOperator(task_id=n, **{n: None}))
            assert refused is argument.required, name


def _raises_type_error(create: Any) -> bool:
    try:
        create()
    except TypeError:
        return True
    return False
