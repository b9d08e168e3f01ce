"""processor.py serializes DAGs as Airflow's DAG processor does, reading Airflow's settings once
per file: in a real Airflow (the test interpreter's), in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

SCRIPT = """
import json
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
from airflow.serialization import helpers
from airflow.timetables.base import Timetable
from dagship.validate import processor

class Unregistered(Timetable):
    pass

to_dict = processor.serializer().to_dict
conf = helpers.conf
with DAG("long_fields", schedule=None) as dag:
    for i in range(3):
        BashOperator(task_id=f"echo_{i}", bash_command="echo " + "x" * 100)
broken = DAG("unregistered", schedule=Unregistered())
reads = []
getint = type(conf).getint
def counted(self, section, key, *args, **kwargs):
    reads.append((section, key))
    return getint(self, section, key, *args, **kwargs)
type(conf).getint = counted
plain = to_dict(dag)
plain_reads = len(reads)
reads.clear()
failed = processor.serialize([dag, broken], to_dict)
once_reads = len(reads)
# The same serialization as without the shortcut (the fields truncated at the same length).
with processor._settings_read_once():
    again = to_dict(dag)
print(json.dumps({
    "same": json.dumps(again, sort_keys=True) == json.dumps(plain, sort_keys=True),
    "truncated": "Truncated" in json.dumps(plain),
    "failed": sorted(failed),
    "traceback": "is not registered" in failed.get("unregistered", ""),
    "restored": helpers.conf is conf,
    "plain_reads": plain_reads,
    "once_reads": once_reads,
}))
"""


def test_serialize_reads_the_templated_field_limit_once_and_changes_nothing(
    tmp_path: Path,
) -> None:
    env = clean_env()
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__MAX_TEMPLATED_FIELD_LENGTH": "40",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["same"] and found["truncated"]
    # A DAG Airflow cannot serialize is still reported, with Airflow's traceback.
    assert found["failed"] == ["unregistered"] and found["traceback"]
    assert found["restored"]
    assert found["plain_reads"] >= 3 and found["once_reads"] == 1
