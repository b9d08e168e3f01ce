"""dagship.core.durations: the one duration rule of the CLI and the server's settings."""

from __future__ import annotations

import pytest

from dagship.core.durations import DurationError, format_duration, parse_duration
from dagship.core.errors import DagshipError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400),
        ("12h", 43200),
        ("30d", 2592000),
        ("2w", 1209600),
        ("1s", 1),
        ("45", 45),
        ("0.2", 0.2),
        ("1.5h", 5400),
        (" 7D ", 604800),
        ("3 m", 180),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "d", "-1d", "0d", "0", "1y", "banana", "1h30m", "1e3"])
def test_bad_durations_say_what_a_duration_is(text: str) -> None:
    with pytest.raises(DurationError, match="is not a duration: use a positive number") as info:
        parse_duration(text)
    # Callers that catch ValueError or dagship's root error both see it.
    assert isinstance(info.value, ValueError) and isinstance(info.value, DagshipError)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (604800, "7d"),
        (1209600, "14d"),
        (10800, "3h"),
        (5400, "90m"),
        (300, "5m"),
        (90, "90s"),
        (300.0, "5m"),
        (1.25, "1.25s"),
        (0.04, "0.04s"),
        (0, "0s"),
        (3725, "1h 2m 5s"),
        (75.4, "75s"),
        (86400 * 1000, "1000d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 90, 300, 5400, 43200, 604800, 2592000])
def test_a_printed_duration_reads_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
