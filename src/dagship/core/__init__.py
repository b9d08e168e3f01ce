"""dagship's shared vocabulary: what every other package means by a manifest, a version, a
deploy's kind, a role or a duration, and the HTTP API's request and response models.

Nothing here does I/O beyond hashing, and nothing here imports the rest of dagship, so the
server, the client, the DAG bundle inside Airflow, the CLI and the checks all speak the same
words (docs/architecture.md).
"""
