"""The deployment's environment: the Python environment built with uv (``build``) and the Airflow
settings to run a project in it (``airflow``). ``dagship parse``, ``dagship test``, the local
Airflow of ``dagship quickstart`` and the agent all take their environment from here."""
