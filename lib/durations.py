"""Human durations for the catalog and the request forms: 90s, 45m, 1h30m, 2d."""

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"^(?:\d+[dhms])+$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
LONGEST = timedelta(days=366)


def parse_duration(value: object) -> timedelta:
    """Parse "1h30m"-style text or a whole number of seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and _WHOLE.match(value.strip().lower()):
        seconds = sum(
            int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value.strip().lower())
        )
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30m, 1h, 1h30m, 2d)")
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    if seconds > LONGEST.total_seconds():
        # Far beyond any grant, and large enough numbers would overflow timedelta.
        raise ValueError(f"{value!r} is longer than {LONGEST.days} days")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
