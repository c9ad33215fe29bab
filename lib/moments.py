"""Moments as people read them in messages: 1 Dec 2026 14:05 UTC."""

from datetime import UTC, datetime


def format_moment(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y %H:%M} UTC"
