"""Processes dagship starts on this machine: a local dagship server, a local Airflow
(``airflow standalone``) and ``dagship quickstart``, which puts them together."""
