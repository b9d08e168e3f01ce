"""Durations written the way people type them: 90m, 12h, 30d, 2w."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> int:
    """Seconds in ``text`` such as ``90m``, ``12h``, ``30d`` or ``2w``; ValueError otherwise."""
    match = _DURATION_RE.match(text.lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"{text!r} is not a duration: use a positive number and a unit, "
            "e.g. 90m, 12h, 30d or 2w (s, m, h, d, w)"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]
