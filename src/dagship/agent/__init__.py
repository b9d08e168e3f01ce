"""``dagship agent``: runs a deployment's Airflow components on a host from the deployment's
current project version (docs/agent.md). It follows the server, builds each new project
version's environment with the same builder ``dagship parse`` uses, switches atomically,
restarts only what must restart, and reports its state so ``dagship deploy --wait`` covers
project deploys too."""
