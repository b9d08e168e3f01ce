"""DAG-only deploys from an S3 prefix: `dagship s3 sync` / `watch`, and the AWS Lambda handler
``dagship.integrations.s3.lambda_handler`` (docs/s3.md)."""

from __future__ import annotations

from typing import Any


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (handler ``dagship.integrations.s3.lambda_handler``)."""
    from dagship.integrations.s3.handler import lambda_handler as handle

    return handle(event, context)
