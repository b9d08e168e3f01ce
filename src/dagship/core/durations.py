"""Durations, written the way people type them: ``90s``, ``90m``, ``12h``, ``7d``, ``2w``.

One rule for every duration dagship reads (``dagship token create --expires-in``,
``dagship preview cleanup --idle`` and the server's ``DAGSHIP_PREVIEW_*`` settings): a positive
number, decimals allowed, followed by an optional unit: ``s`` (seconds), ``m`` (minutes),
``h`` (hours), ``d`` (days) or ``w`` (weeks). A number without a unit is seconds. Units are
case-insensitive and spaces around the number and unit are ignored.
"""

from __future__ import annotations

import re

from dagship.core.errors import InvalidValueError

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


class DurationError(InvalidValueError):
    """Text that is not a duration."""


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``90m`` → 5400.0); DurationError when it is not a duration."""
    match = _DURATION.match(text.lower())
    if not match or float(match.group(1)) <= 0:
        raise DurationError(
            f"{text!r} is not a duration: use a positive number with a unit s, m, h, d or w, "
            "e.g. 90m, 12h, 7d or 2w (a number alone is seconds)"
        )
    return float(match.group(1)) * UNITS[match.group(2)]
