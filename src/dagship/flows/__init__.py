"""What the CLI's commands do against a dagship server, as plain functions: deploy a project
(scan, check, upload what is missing, commit), promote, preview deploys, and waiting for Airflow."""
