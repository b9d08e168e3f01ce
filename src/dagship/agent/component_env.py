"""The environment of an Airflow component the agent runs: the one rule every dagship Airflow
follows (environment/airflow.py: home, project on ``PYTHONPATH``, ``plugins/`` as the plugins
folder) plus the agent's own Airflow settings and the dagship DAG bundle.

- Every ``AIRFLOW__*`` variable of the agent passes through, its database settings included:
  the host's Airflow configuration is the agent's environment (a systemd unit's
  ``Environment=``, a container's env). Only where the project lives is not the agent's to set:
  ``[core] plugins_folder`` is the version's ``plugins/``.
- The dagship DAG bundle of the deployment, reading the server the agent follows with the
  agent's token (``DAGSHIP_API_TOKEN``), unless ``[dag_processor] dag_bundle_config_list`` is
  set. The bundle's token (``DAGSHIP_API_TOKEN``) is the agent's.
- Tasks reach the Execution API on the port of ``[api] port`` unless set.
- Airflow's file discovery reads only the files a version changed (``DISCOVERY``, unless set).
- Tasks ride out a restart of the API server (``RIDE_OUT``, unless set): a switch restarts it
  while a Celery worker's tasks still run and report to it, and Airflow's default of 5 tries
  of each Execution API call gives up after about 10 s of outage (4 s at worst), failing the
  task.
- The environment's ``bin/`` first on ``PATH`` (``airflow standalone`` starts ``airflow ...``
  from there) and a ``dagship`` link on ``PYTHONPATH`` (the bundle runs inside Airflow).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from dagship.environment.airflow import airflow_environment
from dagship.local.airflow import DISCOVERY, TOKEN_ENV, bundle_config

BUNDLE_SETTING = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
EXECUTION_API_SETTING = "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"
# Airflow's default is 5 tries, 1-2-4-8 s (random, at least 1 s) apart; 10 tries keep a
# task's calls going for about two minutes, longer than an API server takes to restart.
RIDE_OUT = {"AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10"}
# Set by the project rule (environment/airflow.py), not by the agent's environment.
PROJECT_SETTINGS = ("AIRFLOW__CORE__PLUGINS_FOLDER",)


def component_environment(
    airflow_home: Path,
    project_tree: Path,
    bin_dir: Path,
    python_path: Path,
    server_url: str,
    deployment: str,
    token: str | None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of a component running ``project_tree`` with the Airflow of
    ``bin_dir``, for the agent whose environment is ``base`` (default ``os.environ``)."""
    base = os.environ if base is None else base
    env = airflow_environment(airflow_home, project_tree, base)
    env.update(
        {
            key: value
            for key, value in base.items()
            if key.startswith("AIRFLOW__") and key not in PROJECT_SETTINGS
        }
    )
    if token:
        env[TOKEN_ENV] = token  # the bundle's token: the agent's own
    if not base.get(BUNDLE_SETTING):
        env[BUNDLE_SETTING] = json.dumps(bundle_config(server_url, deployment))
    for key, value in {**RIDE_OUT, **DISCOVERY}.items():
        env.setdefault(key, value)
    port = base.get("AIRFLOW__API__PORT") or "8080"
    env.setdefault(EXECUTION_API_SETTING, f"http://localhost:{port}/execution/")
    env["PATH"] = os.pathsep.join([str(bin_dir), base.get("PATH", os.defpath)])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(python_path)]))
    return env
