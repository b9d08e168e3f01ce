"""Durations, written the way people type them: ``90s``, ``90m``, ``12h``, ``7d``, ``2w``.

One rule for every duration dagship reads (``dagship token create --expires-in``,
``dagship preview cleanup --idle`` and the server's ``DAGSHIP_PREVIEW_*`` settings): a positive
number, decimals allowed, followed by an optional unit: ``s`` (seconds), ``m`` (minutes),
``h`` (hours), ``d`` (days) or ``w`` (weeks). A number without a unit is seconds. Units are
case-insensitive and spaces around the number and unit are ignored.

And one way to print them (``format_duration``): ``7d``, ``3h``, ``90m``, ``90s``, ``1.5s``.
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


# Units a duration is printed in, largest first (weeks read worse than days: 14d, not 2w).
_PRINTED = ("d", "h", "m", "s")
# Past this many of one unit, a duration is printed in parts: "1h 2m 5s", not "3725s".
_MAX_COUNT = 999


def format_duration(seconds: float) -> str:
    """``seconds`` as people write a duration: the largest unit that says it exactly
    (604800 → ``7d``, 5400 → ``90m``, 90 → ``90s``), which ``parse_duration`` reads back;
    fractions under a minute keep three digits (``1.25s``); other durations are rounded to
    the second and printed in parts (3725 → ``1h 2m 5s``)."""
    if 0 < seconds < 60 and seconds != int(seconds):
        return f"{seconds:.3g}s"
    whole = max(0, round(seconds))
    if whole == 0:
        return "0s"
    for unit in _PRINTED:
        count, rest = divmod(whole, UNITS[unit])
        if rest == 0 and count <= _MAX_COUNT:
            return f"{count}{unit}"
    parts = []
    for unit in _PRINTED:
        count, whole = divmod(whole, UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)
