"""The parse command's fixture: the environment tests check environments through `dagship parse`."""

from tests.validate.conftest import parse_cli

__all__ = ["parse_cli"]
