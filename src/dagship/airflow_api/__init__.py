"""The one client of Apache Airflow 3's REST API (v2) in dagship. It never imports Airflow, so
the server, the quickstart and the agent use it wherever dagship is installed."""
