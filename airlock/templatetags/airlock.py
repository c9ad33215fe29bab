import base64
from datetime import datetime, timedelta

import segno
from django import template

from broker.policy.externals import person_label
from lib.durations import format_duration
from lib.moments import format_moment

register = template.Library()


@register.filter
def person(user) -> str:
    """A person's name; a third party's says "external" and their company."""
    return person_label(user) if user is not None else ""


@register.filter
def qr_data_uri(text: str) -> str:
    """A QR code as an inline SVG data URI, rendered here: no third party sees the secret."""
    return segno.make(text, error="m").svg_data_uri(scale=5, border=2)


@register.filter
def base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


@register.filter
def human_duration(value: timedelta) -> str:
    return format_duration(value)


@register.filter
def human_moment(value: datetime) -> str:
    return format_moment(value)
