"""What Airflow 3 changed for code written for Airflow 2: one table, read by ``dagship
migrate-check`` (every change a project needs) and by ``dagship parse`` (the hint of an import
error or of a removed argument, validate/error_hints.py).

The entries follow Airflow's own upgrade checks as ruff implements them (rules AIR301: removed
in Airflow 3, AIR302: moved to a provider package, AIR311 and AIR312: deprecated, still
working) and Airflow's "Upgrading to Airflow 3" guide, keeping what DAG files, their helpers
and plugins use. Each entry was checked against Airflow 3.3.2: a ``required`` change no longer
imports there (or is refused as an argument), a suggested one still works with a deprecation
warning, and every replacement imports (tests/validate/airflow2_test.py does this again).
"""

from __future__ import annotations

from dataclasses import dataclass

# Provider packages that Apache Airflow 3 installs itself (apache-airflow-core's dependencies).
PROVIDERS_WITH_AIRFLOW = frozenset(
    {
        "apache-airflow-providers-standard",
        "apache-airflow-providers-common-sql",
        "apache-airflow-providers-common-io",
        "apache-airflow-providers-common-compat",
        "apache-airflow-providers-smtp",
    }
)
# airflow.providers.<namespace>.<name> is distribution apache-airflow-providers-<namespace>-<name>.
_PROVIDER_NAMESPACES = frozenset({"apache", "atlassian", "cncf", "common", "dbt", "microsoft"})


@dataclass(frozen=True)
class Change:
    """One thing Airflow 3 moved or removed: a module (every name in it) or one name."""

    old: str  # "airflow.operators.bash_operator" or "airflow.utils.dates.days_ago"
    new: str | None  # what to use instead; None: removed, see ``note``
    required: bool  # True: gone in Airflow 3; False: deprecated, still works
    note: str = ""

    def replacement(self, name: str) -> str | None:
        """What to use instead of ``name`` (this entry's ``old`` or a name inside it)."""
        if self.new is None:
            return None
        return self.new + name[len(self.old) :]


def _moved(old: str, new: str, note: str = "") -> Change:
    return Change(old, new, required=True, note=note)


def _removed(old: str, note: str) -> Change:
    return Change(old, None, required=True, note=note)


def _deprecated(old: str, new: str, note: str = "") -> Change:
    return Change(old, new, required=False, note=note)


_STANDARD = "airflow.providers.standard"
_SQL_OPERATOR = "use airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator"
_DATASETS = "Datasets are Assets in Airflow 3 (Dataset → Asset, DatasetAlias → AssetAlias, ...)"

CHANGES: tuple[Change, ...] = (
    # Removed without a module to import instead.
    _removed(
        "airflow.contrib", "the contrib modules became provider packages (airflow.providers.*)"
    ),
    _removed(
        "airflow.operators.subdag", "SubDAGs are gone: group tasks with airflow.sdk.TaskGroup"
    ),
    _removed("airflow.www", "the Flask UI is gone: UI plugins use FastAPI apps and React views"),
    _removed("airflow.api_connexion", "the REST API v1 is gone: use the REST API v2"),
    _removed(
        "airflow.utils.dates.days_ago",
        "use pendulum.today('UTC').add(days=-N), or a fixed start_date",
    ),
    _removed("airflow.utils.dates.date_range", "build the dates with pendulum or datetime"),
    _removed("airflow.utils.dates.parse_execution_date", "use pendulum.parse"),
    _removed("airflow.utils.dates.round_time", "round the datetime yourself"),
    _removed("airflow.utils.dates.scale_time_units", "compute the unit yourself"),
    _removed("airflow.utils.dates.infer_time_unit", "compute the unit yourself"),
    _removed(
        "airflow.utils.decorators.apply_defaults",
        "defaults are applied by Airflow itself: remove the decorator",
    ),
    _moved("airflow.utils.file.TemporaryDirectory", "tempfile.TemporaryDirectory"),
    _removed(
        "airflow.utils.file.mkdirs", "use pathlib.Path(path).mkdir(parents=True, exist_ok=True)"
    ),
    _moved("airflow.utils.helpers.chain", "airflow.sdk.chain"),
    _moved("airflow.utils.helpers.cross_downstream", "airflow.sdk.cross_downstream"),
    _moved("airflow.utils.dag_parsing_context", "airflow.sdk"),
    _moved(
        "airflow.utils.trigger_rule.TriggerRule.DUMMY",
        "airflow.task.trigger_rule.TriggerRule.ALWAYS",
    ),
    _moved(
        "airflow.utils.trigger_rule.TriggerRule.NONE_FAILED_OR_SKIPPED",
        "airflow.task.trigger_rule.TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS",
    ),
    # Datasets became assets.
    _moved("airflow.datasets", "airflow.sdk", _DATASETS),
    _moved("airflow.datasets.Dataset", "airflow.sdk.Asset"),
    _moved("airflow.datasets.DatasetAlias", "airflow.sdk.AssetAlias"),
    _moved("airflow.datasets.DatasetAll", "airflow.sdk.AssetAll"),
    _moved("airflow.datasets.DatasetAny", "airflow.sdk.AssetAny"),
    _moved("airflow.datasets.metadata", "airflow.sdk"),
    _removed("airflow.datasets.expand_alias_to_datasets", "read the alias's asset events instead"),
    _moved("airflow.models.dataset", "airflow.models.asset", _DATASETS),
    _moved("airflow.timetables.datasets", "airflow.timetables.assets", _DATASETS),
    _moved(
        "airflow.timetables.datasets.DatasetOrTimeSchedule",
        "airflow.timetables.assets.AssetOrTimeSchedule",
    ),
    _moved(
        "airflow.timetables.simple.DatasetTriggeredTimetable",
        "airflow.timetables.simple.AssetTriggeredTimetable",
    ),
    _deprecated("airflow.Dataset", "airflow.sdk.Asset"),
    # Airflow 1 module names, removed; their classes live in provider packages.
    _moved("airflow.operators.bash_operator", f"{_STANDARD}.operators.bash"),
    _moved("airflow.operators.python_operator", f"{_STANDARD}.operators.python"),
    _moved(
        "airflow.operators.dummy", f"{_STANDARD}.operators.empty", "DummyOperator is EmptyOperator"
    ),
    _moved("airflow.operators.dummy.DummyOperator", f"{_STANDARD}.operators.empty.EmptyOperator"),
    _moved(
        "airflow.operators.dummy_operator",
        f"{_STANDARD}.operators.empty",
        "DummyOperator is EmptyOperator",
    ),
    _moved(
        "airflow.operators.dummy_operator.DummyOperator",
        f"{_STANDARD}.operators.empty.EmptyOperator",
    ),
    _moved("airflow.operators.dagrun_operator", f"{_STANDARD}.operators.trigger_dagrun"),
    _moved("airflow.operators.latest_only_operator", f"{_STANDARD}.operators.latest_only"),
    _moved("airflow.operators.branch_operator", f"{_STANDARD}.operators.branch"),
    _moved("airflow.operators.email_operator", "airflow.providers.smtp.operators.smtp"),
    _moved("airflow.operators.sql", "airflow.providers.common.sql.operators.sql"),
    _moved("airflow.operators.sql_branch_operator", "airflow.providers.common.sql.operators.sql"),
    _moved(
        "airflow.operators.check_operator",
        "airflow.providers.common.sql.operators.sql",
        "CheckOperator is SQLCheckOperator",
    ),
    _removed("airflow.operators.postgres_operator", _SQL_OPERATOR),
    _removed("airflow.operators.mysql_operator", _SQL_OPERATOR),
    _removed("airflow.operators.sqlite_operator", _SQL_OPERATOR),
    _removed("airflow.operators.mssql_operator", _SQL_OPERATOR),
    _removed("airflow.operators.oracle_operator", _SQL_OPERATOR),
    _removed("airflow.operators.jdbc_operator", _SQL_OPERATOR),
    _moved(
        "airflow.operators.http_operator",
        "airflow.providers.http.operators.http",
        "SimpleHttpOperator is HttpOperator",
    ),
    _moved(
        "airflow.operators.http_operator.SimpleHttpOperator",
        "airflow.providers.http.operators.http.HttpOperator",
    ),
    _moved("airflow.operators.docker_operator", "airflow.providers.docker.operators.docker"),
    _moved("airflow.operators.slack_operator", "airflow.providers.slack.operators.slack"),
    _moved(
        "airflow.operators.papermill_operator", "airflow.providers.papermill.operators.papermill"
    ),
    _moved("airflow.operators.hive_operator", "airflow.providers.apache.hive.operators.hive"),
    _moved(
        "airflow.operators.s3_file_transform_operator", "airflow.providers.amazon.aws.operators.s3"
    ),
    _moved(
        "airflow.operators.s3_to_redshift_operator",
        "airflow.providers.amazon.aws.transfers.s3_to_redshift",
    ),
    _moved(
        "airflow.operators.redshift_to_s3_operator",
        "airflow.providers.amazon.aws.transfers.redshift_to_s3",
    ),
    _moved("airflow.hooks.base_hook", "airflow.sdk"),
    _moved("airflow.hooks.dbapi", "airflow.providers.common.sql.hooks.sql"),
    _moved("airflow.hooks.dbapi_hook", "airflow.providers.common.sql.hooks.sql"),
    _moved("airflow.hooks.S3_hook", "airflow.providers.amazon.aws.hooks.s3"),
    _moved("airflow.hooks.postgres_hook", "airflow.providers.postgres.hooks.postgres"),
    _moved("airflow.hooks.mysql_hook", "airflow.providers.mysql.hooks.mysql"),
    _moved("airflow.hooks.sqlite_hook", "airflow.providers.sqlite.hooks.sqlite"),
    _moved("airflow.hooks.mssql_hook", "airflow.providers.microsoft.mssql.hooks.mssql"),
    _moved("airflow.hooks.oracle_hook", "airflow.providers.oracle.hooks.oracle"),
    _moved("airflow.hooks.jdbc_hook", "airflow.providers.jdbc.hooks.jdbc"),
    _moved("airflow.hooks.http_hook", "airflow.providers.http.hooks.http"),
    _moved("airflow.hooks.slack_hook", "airflow.providers.slack.hooks.slack"),
    _moved("airflow.hooks.docker_hook", "airflow.providers.docker.hooks.docker"),
    _moved("airflow.hooks.hive_hooks", "airflow.providers.apache.hive.hooks.hive"),
    _moved("airflow.hooks.samba_hook", "airflow.providers.samba.hooks.samba"),
    _moved("airflow.sensors.base_sensor_operator", "airflow.sdk"),
    _moved("airflow.sensors.external_task_sensor", f"{_STANDARD}.sensors.external_task"),
    _moved("airflow.sensors.time_delta_sensor", f"{_STANDARD}.sensors.time_delta"),
    _moved("airflow.sensors.date_time_sensor", f"{_STANDARD}.sensors.date_time"),
    _moved("airflow.sensors.sql", "airflow.providers.common.sql.sensors.sql"),
    _moved("airflow.sensors.sql_sensor", "airflow.providers.common.sql.sensors.sql"),
    _moved("airflow.sensors.s3_key_sensor", "airflow.providers.amazon.aws.sensors.s3"),
    _moved("airflow.sensors.http_sensor", "airflow.providers.http.sensors.http"),
    _moved(
        "airflow.sensors.hive_partition_sensor",
        "airflow.providers.apache.hive.sensors.hive_partition",
    ),
    _moved("airflow.kubernetes", "airflow.providers.cncf.kubernetes"),
    # Still there in Airflow 3, deprecated: the Task SDK (airflow.sdk) and the standard provider.
    _deprecated("airflow.decorators", "airflow.sdk"),
    _deprecated("airflow.models.DAG", "airflow.sdk.DAG"),
    _deprecated("airflow.models.dag.DAG", "airflow.sdk.DAG"),
    _deprecated("airflow.models.Variable", "airflow.sdk.Variable"),
    _deprecated("airflow.models.Connection", "airflow.sdk.Connection"),
    _deprecated("airflow.models.baseoperator", "airflow.sdk"),
    _deprecated("airflow.models.param", "airflow.sdk"),
    _deprecated("airflow.models.xcom_arg", "airflow.sdk"),
    _deprecated("airflow.utils.task_group", "airflow.sdk"),
    _deprecated("airflow.utils.edgemodifier", "airflow.sdk"),
    _deprecated("airflow.utils.context", "airflow.sdk"),
    _deprecated("airflow.utils.timezone", "airflow.sdk.timezone"),
    _deprecated("airflow.utils.trigger_rule", "airflow.task.trigger_rule"),
    _deprecated("airflow.io.path", "airflow.sdk"),
    _deprecated("airflow.notifications.basenotifier", "airflow.sdk"),
    _deprecated("airflow.hooks.base", "airflow.sdk"),
    _deprecated("airflow.sensors.base", "airflow.sdk"),
    _deprecated(
        "airflow.exceptions.AirflowSkipException", "airflow.sdk.exceptions.AirflowSkipException"
    ),
    _deprecated(
        "airflow.exceptions.AirflowFailException", "airflow.sdk.exceptions.AirflowFailException"
    ),
    _deprecated(
        "airflow.exceptions.AirflowSensorTimeout", "airflow.sdk.exceptions.AirflowSensorTimeout"
    ),
    _deprecated("airflow.operators.python", f"{_STANDARD}.operators.python"),
    _deprecated("airflow.operators.python.get_current_context", "airflow.sdk.get_current_context"),
    _deprecated("airflow.operators.bash", f"{_STANDARD}.operators.bash"),
    _deprecated("airflow.operators.empty", f"{_STANDARD}.operators.empty"),
    _deprecated("airflow.operators.trigger_dagrun", f"{_STANDARD}.operators.trigger_dagrun"),
    _deprecated("airflow.operators.latest_only", f"{_STANDARD}.operators.latest_only"),
    _deprecated("airflow.operators.datetime", f"{_STANDARD}.operators.datetime"),
    _deprecated("airflow.operators.weekday", f"{_STANDARD}.operators.weekday"),
    _deprecated("airflow.operators.branch", f"{_STANDARD}.operators.branch"),
    _deprecated("airflow.operators.email", "airflow.providers.smtp.operators.smtp"),
    _deprecated(
        "airflow.operators.generic_transfer",
        "airflow.providers.common.sql.operators.generic_transfer",
    ),
    _deprecated("airflow.sensors.external_task", f"{_STANDARD}.sensors.external_task"),
    _deprecated("airflow.sensors.time_delta", f"{_STANDARD}.sensors.time_delta"),
    _deprecated("airflow.sensors.date_time", f"{_STANDARD}.sensors.date_time"),
    _deprecated("airflow.sensors.filesystem", f"{_STANDARD}.sensors.filesystem"),
    _deprecated("airflow.sensors.python", f"{_STANDARD}.sensors.python"),
    _deprecated("airflow.sensors.bash", f"{_STANDARD}.sensors.bash"),
    _deprecated("airflow.sensors.weekday", f"{_STANDARD}.sensors.weekday"),
    _deprecated("airflow.sensors.time_sensor", f"{_STANDARD}.sensors.time"),
    _deprecated("airflow.triggers.external_task", f"{_STANDARD}.triggers.external_task"),
    _deprecated("airflow.hooks.package_index", f"{_STANDARD}.hooks.package_index"),
    _deprecated("airflow.hooks.filesystem", f"{_STANDARD}.hooks.filesystem"),
    _deprecated("airflow.hooks.subprocess", f"{_STANDARD}.hooks.subprocess"),
    _deprecated("airflow.triggers.temporal", f"{_STANDARD}.triggers.temporal"),
    _deprecated("airflow.triggers.file", f"{_STANDARD}.triggers.file"),
)
_BY_OLD = {change.old: change for change in CHANGES}


@dataclass(frozen=True)
class RemovedArgument:
    """A keyword argument Airflow 3 no longer takes."""

    name: str
    new: str | None  # the argument to pass instead
    required: bool
    note: str = ""


# Arguments of DAG(...) and @dag(...).
DAG_ARGUMENTS: dict[str, RemovedArgument] = {
    a.name: a
    for a in (
        RemovedArgument("schedule_interval", "schedule", True),
        RemovedArgument("timetable", "schedule", True),
        RemovedArgument("concurrency", "max_active_tasks", True),
        RemovedArgument("fail_stop", "fail_fast", True),
        RemovedArgument("full_filepath", None, True, "remove it"),
        RemovedArgument("default_view", None, True, "remove it, the new UI has no default view"),
        RemovedArgument("orientation", None, True, "remove it, the new UI has no orientation"),
        RemovedArgument(
            "sla_miss_callback",
            None,
            False,
            "it is ignored, SLAs became Deadline Alerts (Airflow 3.1)",
        ),
    )
}
# Arguments of DagBag(...), in tests.
DAGBAG_ARGUMENTS: dict[str, RemovedArgument] = {
    a.name: a
    for a in (
        RemovedArgument("read_dags_from_db", None, True, "DagBag reads files: remove it"),
        RemovedArgument(
            "include_examples",
            None,
            False,
            "removed in 3.2, `dagship test` still accepts it",
        ),
    )
}
# Arguments of operators, sensors and @task(...), also as keys of default_args.
OPERATOR_ARGUMENTS: dict[str, RemovedArgument] = {
    a.name: a
    for a in (
        RemovedArgument("task_concurrency", "max_active_tis_per_dag", True),
        RemovedArgument("provide_context", None, True, "remove it, the context is always passed"),
        RemovedArgument(
            "sla", None, False, "it is ignored, SLAs became Deadline Alerts (Airflow 3.1)"
        ),
    )
}
# Arguments of one operator.
OPERATOR_SPECIFIC_ARGUMENTS: dict[str, dict[str, RemovedArgument]] = {
    "TriggerDagRunOperator": {
        "execution_date": RemovedArgument("execution_date", "logical_date", True)
    },
    **{
        operator: {
            "use_task_execution_day": RemovedArgument(
                "use_task_execution_day", "use_task_logical_date", True
            )
        }
        for operator in ("BranchDateTimeOperator", "DayOfWeekSensor", "BranchDayOfWeekOperator")
    },
}
# trigger_rule= values that Airflow 3 removed.
TRIGGER_RULES = {"dummy": "always", "none_failed_or_skipped": "none_failed_min_one_success"}

# Task context keys (and template variables) Airflow 3 removed, with what to use instead.
CONTEXT_KEYS: dict[str, str | None] = {
    "execution_date": "logical_date",
    "next_execution_date": "data_interval_end",
    "next_ds": "data_interval_end | ds",
    "next_ds_nodash": "data_interval_end | ds_nodash",
    "prev_execution_date": "prev_data_interval_start_success",
    "prev_execution_date_success": "prev_data_interval_start_success",
    "prev_ds": "prev_data_interval_start_success | ds",
    "prev_ds_nodash": "prev_data_interval_start_success | ds_nodash",
    "yesterday_ds": "macros.ds_add(ds, -1)",
    "yesterday_ds_nodash": "macros.ds_add(ds, -1) | replace('-', '')",
    "tomorrow_ds": "macros.ds_add(ds, 1)",
    "tomorrow_ds_nodash": "macros.ds_add(ds, 1) | replace('-', '')",
    "triggering_dataset_events": "triggering_asset_events",
    "conf": None,  # airflow.configuration.conf, imported where it is needed
}
# Class attributes of an AirflowPlugin that Airflow 3 ignores.
PLUGIN_ATTRIBUTES = ("operators", "sensors", "hooks", "executors")


def find(name: str) -> Change | None:
    """The change that covers ``name``: its own entry, else the entry of the module (or class)
    it is in, the most specific first."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        change = _BY_OLD.get(".".join(parts[:end]))
        if change is not None:
            return change
    return None


def describe(name: str, change: Change) -> str:
    """One line for a person: what happened to ``name`` and what to use instead."""
    replacement = change.replacement(name)
    what = "was removed in Airflow 3" if change.required else "is deprecated in Airflow 3"
    text = f"`{name}` {what}"
    if replacement:
        text += f": use `{replacement}`"
        distribution = provider_distribution(replacement)
        if distribution and distribution not in PROVIDERS_WITH_AIRFLOW:
            text += f" (add `{distribution}` to requirements.txt)"
    if change.note:
        text += f"{'; ' if replacement else ': '}{change.note}"
    return text


def describe_argument(argument: RemovedArgument, owner: str = "") -> str:
    where = f" of {owner}" if owner else ""
    what = "was removed" if argument.required else "is deprecated"
    text = f"`{argument.name}=`{where} {what} in Airflow 3"
    if argument.new:
        text += f": use `{argument.new}=`"
    if argument.note:
        text += f"{'; ' if argument.new else ': '}{argument.note}"
    return text


def describe_context_key(key: str, *, template: bool = False) -> str:
    what = "template variable" if template else "context key"
    text = f"the `{key}` {what} was removed in Airflow 3"
    if key == "conf":
        where = "pass the value in params" if template else "import airflow.configuration.conf"
        return f"{text}: {where}"
    return f"{text}: use `{CONTEXT_KEYS[key]}`"


def provider_distribution(module: str) -> str | None:
    """``apache-airflow-providers-amazon`` for ``airflow.providers.amazon.aws.hooks.s3``."""
    parts = module.split(".")
    if len(parts) < 3 or parts[:2] != ["airflow", "providers"]:
        return None
    name = parts[2:4] if parts[2] in _PROVIDER_NAMESPACES and len(parts) > 3 else parts[2:3]
    return "apache-airflow-providers-" + "-".join(name).replace("_", "-")
