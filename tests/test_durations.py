from datetime import timedelta

import pytest

from lib.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("45m", 2700), ("1h30m", 5400), ("2d", 172800), (600, 600), ("3600", 3600)],
)
def test_parse(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "1x", "h", "-5m", 0, -1, True, None, "1h 30m", 1.5])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize("huge", ["367d", "0h8m9d51685521822723m", 10**20])
def test_absurdly_long_durations_are_refused_not_overflowed(huge):
    with pytest.raises(ValueError, match="longer than 366 days"):
        parse_duration(huge)


def test_format_round_trips():
    assert format_duration(timedelta(seconds=5430)) == "1h30m30s"
    assert parse_duration(format_duration(timedelta(hours=26))) == timedelta(hours=26)
