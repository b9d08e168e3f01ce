"""Validate a project before it is deployed: parse its DAG files and run its tests, in the
deployment's environment (Airflow version and requirements)."""
