"""``airflow_settings.yaml``: the project's connections, pools and variables, in the Astro CLI's
format, applied to the Airflow database a host runs with.

```yaml
airflow:
  connections:
    - conn_id: warehouse
      conn_type: postgres
      conn_host: db.example.com
      conn_schema: analytics
      conn_login: airflow
      conn_password: secret
      conn_port: 5432
      conn_extra: {sslmode: require}    # a mapping (stored as JSON) or a string
    # or: conn_uri: postgres://airflow:secret@db.example.com:5432/analytics
  pools:
    - pool_name: warehouse
      pool_slot: 4
      pool_description: queries on the warehouse
  variables:
    - variable_name: region
      variable_value: eu-west-1
```

Each entry the file names is created, or updated to what the file says (a connection is
replaced as a whole, as the Astro CLI does); entries the file does not name are left alone.
As with the Astro CLI, an entry without a name (the blank template ``astro dev init`` writes), a
connection with neither ``conn_type`` nor ``conn_uri``, a pool without ``pool_slot`` and a
variable without ``variable_value`` are skipped; ``AppliedSettings.skipped`` says which and why.
A file that is not valid YAML, an unknown key or a value of the wrong type is an AgentError
naming the file and the entry, and nothing is changed. Everything is written in one transaction
by ``settings_worker.py``, run with the environment's interpreter (it has Airflow; the agent's
own interpreter may not).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dagship.agent.errors import AgentError

SETTINGS_FILE = "airflow_settings.yaml"
WORKER_SCRIPT = Path(__file__).with_name("settings_worker.py")
# The key of each kind's name, and every key an entry of that kind may have.
KINDS = {
    "connections": (
        "conn_id",
        (
            "conn_id",
            "conn_type",
            "conn_host",
            "conn_schema",
            "conn_login",
            "conn_password",
            "conn_port",
            "conn_uri",
            "conn_extra",
        ),
    ),
    "pools": ("pool_name", ("pool_name", "pool_slot", "pool_description")),
    "variables": ("variable_name", ("variable_name", "variable_value")),
}


@dataclass(frozen=True)
class AppliedSettings:
    """How many entries of each kind were created or updated, and the entries skipped."""

    connections: int = 0
    pools: int = 0
    variables: int = 0
    skipped: tuple[str, ...] = ()


def apply_airflow_settings(python: Path, env: Mapping[str, str], project: Path) -> AppliedSettings:
    """Apply the project's ``airflow_settings.yaml`` to the Airflow database of ``env`` (its
    ``AIRFLOW_HOME`` and ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), with ``python``, the
    environment's interpreter; nothing to do without the file."""
    path = project / SETTINGS_FILE
    if not path.is_file():
        return AppliedSettings()
    entries, skipped = read_airflow_settings(path)
    if not any(entries.values()):
        return AppliedSettings(skipped=skipped)
    done = subprocess.run(
        [str(python), str(WORKER_SCRIPT)],
        input=json.dumps(entries),
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()
        raise AgentError(
            f"could not apply {SETTINGS_FILE} to Airflow's database (nothing was changed):\n"
            + "\n".join(lines[-10:])
        )
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    return AppliedSettings(counts["connections"], counts["pools"], counts["variables"], skipped)


def read_airflow_settings(path: Path) -> tuple[dict[str, list[dict[str, Any]]], tuple[str, ...]]:
    """The entries to apply, by kind (as ``settings_worker.py`` takes them), and the entries
    skipped; AgentError naming the file and entry for anything else."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise AgentError(f"{path} is not valid YAML: {exc}") from exc
    airflow = _mapping(document, path, "the file", ("airflow",)).get("airflow")
    kinds = _mapping(airflow, path, "airflow", tuple(KINDS))
    entries: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    skipped: list[str] = []
    for kind, (name_key, keys) in KINDS.items():
        items = kinds.get(kind) or []
        if not isinstance(items, list):
            raise AgentError(f"{path}: airflow.{kind} must be a list of entries")
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"airflow.{kind}[{index}]"
            fields = _mapping(item, path, where, keys)
            name = _text(fields.get(name_key), path, where, name_key)
            if name in seen:
                raise AgentError(f"{path}: {where}: {name} is named twice; keep one entry")
            reason = _skip_reason(kind, fields, name)
            if reason:
                skipped.append(f"{where}{f' ({name})' if name else ''}: {reason}")
                continue
            seen.add(name)
            entries[kind].append(_entry(kind, fields, path, f"{where} ({name})"))
    return entries, tuple(skipped)


def _mapping(value: object, path: Path, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AgentError(f"{path}: {where} must be a mapping of {', '.join(keys)}")
    unknown = sorted(str(key) for key in value if key not in keys)
    if unknown:
        raise AgentError(
            f"{path}: {where}: unknown key {', '.join(unknown)}; the keys are {', '.join(keys)}"
        )
    return value


def _skip_reason(kind: str, fields: Mapping[str, Any], name: str) -> str | None:
    if not name:
        return "no name"
    if kind == "connections" and not (fields.get("conn_type") or fields.get("conn_uri")):
        return "neither conn_type nor conn_uri"
    if kind == "pools" and not fields.get("pool_slot"):
        return "no pool_slot"
    if kind == "variables" and fields.get("variable_value") is None:
        return "no variable_value"
    return None


def _entry(kind: str, fields: Mapping[str, Any], path: Path, where: str) -> dict[str, Any]:
    def text(key: str) -> str:
        return _text(fields.get(key), path, where, key)

    if kind == "pools":
        slots = _number(fields.get("pool_slot"), path, where, "pool_slot")
        return {"name": text("pool_name"), "slots": slots, "description": text("pool_description")}
    if kind == "variables":
        value = fields.get("variable_value")
        stored = json.dumps(value) if isinstance(value, dict | list) else text("variable_value")
        return {"key": text("variable_name"), "value": stored}
    extra = fields.get("conn_extra")
    return {
        "conn_id": text("conn_id"),
        "conn_type": text("conn_type") or None,
        "host": text("conn_host") or None,
        "schema": text("conn_schema") or None,
        "login": text("conn_login") or None,
        "password": text("conn_password") or None,
        "port": _number(fields.get("conn_port"), path, where, "conn_port"),
        "uri": text("conn_uri") or None,
        "extra": json.dumps(extra) if isinstance(extra, dict) else text("conn_extra") or None,
    }


def _text(value: object, path: Path, where: str, key: str) -> str:
    """A scalar as the text Airflow stores ("" for none); AgentError for a list or mapping."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise AgentError(f"{path}: {where}: {key} must be a single value, not {type(value).__name__}")


def _number(value: object, path: Path, where: str, key: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise AgentError(f"{path}: {where}: {key} must be a whole number, not {value!r}") from None
