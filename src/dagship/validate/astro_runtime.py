"""What an Astro Runtime image installs besides Apache Airflow, for the hint of a missing package.

An Astro project's DAGs may import a package its requirements.txt never names because the
Runtime image ships it; dagship's environment holds Airflow and requirements.txt only, so the
import fails there and the fix is to name the package. The lists come from Astronomer's "Astro
Runtime provider package reference" (astronomer.io/docs/runtime/runtime-provider-reference):
Runtime 3.3-2 for the Airflow 3 images and Runtime 12.8.0 for the Airflow 2 ones (the images
projects migrate from), plus the libraries those packages bring that DAG code imports directly
(astro-sdk-python's pandas, pyarrow, smart-open and python-frontmatter; the client libraries
of the providers). Packages Apache Airflow installs itself are left out: they are never missing.
"""

from __future__ import annotations

import re

# Import name -> the distribution to add to requirements.txt.
_AIRFLOW3: dict[str, str] = {
    "airflow.providers.celery": "apache-airflow-providers-celery",
    "airflow.providers.elasticsearch": "apache-airflow-providers-elasticsearch",
    "airflow.providers.openlineage": "apache-airflow-providers-openlineage",
    "celery": "celery",
    "elasticsearch": "elasticsearch",
    "openlineage": "openlineage-python",
}
_AIRFLOW2: dict[str, str] = {
    **_AIRFLOW3,
    **{
        f"airflow.providers.{module}": f"apache-airflow-providers-{module.replace('.', '-')}"
        for module in (
            "amazon",
            "cncf.kubernetes",
            "datadog",
            "fab",
            "ftp",
            "google",
            "http",
            "imap",
            "microsoft.azure",
            "mysql",
            "postgres",
            "redis",
            "sqlite",
        )
    },
    "astro": "astro-sdk-python",
    "astronomer.providers": "astronomer-providers",
    "pandas": "pandas",
    "numpy": "numpy",
    "pyarrow": "pyarrow",
    "smart_open": "smart-open",
    "frontmatter": "python-frontmatter",
    "boto3": "boto3",
    "botocore": "botocore",
    "google.cloud": "apache-airflow-providers-google",
    "azure": "apache-airflow-providers-microsoft-azure",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "redis": "redis",
    "kubernetes": "kubernetes",
    "datadog": "datadog",
}
_RUNTIME3_TAG = re.compile(r"^\d+\.\d+-\d+")  # 3.1-12: the Airflow line, then the release


def shipped(module: str, tag: str) -> str | None:
    """The distribution that provides ``module`` in the Astro Runtime image with ``tag``, or
    None when that image does not ship it."""
    packages = _AIRFLOW3 if _RUNTIME3_TAG.match(tag) else _AIRFLOW2
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        distribution = packages.get(".".join(parts[:end]))
        if distribution is not None:
            return distribution
    return None
