"""A request as the model sees it: a handful of categorical values, each readable."""

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# The order is the order of the reasons when two weigh the same.
FEATURES = (
    "profile",
    "hour",
    "day",
    "network",
    "channel",
    "duration",
    "sequence",
    "frequency",
    "ticket",
)
DURATION_BUCKETS = (
    (timedelta(minutes=15), "≤15m"),
    (timedelta(minutes=30), "≤30m"),
    (timedelta(hours=1), "≤1h"),
    (timedelta(hours=2), "≤2h"),
    (timedelta(hours=4), "≤4h"),
    (timedelta(hours=8), "≤8h"),
)
_TICKET_KIND = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Observation:
    """One request when it was asked: who, for what, when, how, from where."""

    user: str  # a stable key (the user's id); names are for reasons only
    groups: tuple[str, ...]  # the requester's groups: their peers
    profile: str
    local_time: datetime  # in the requester's time zone
    duration: timedelta
    channel: str
    network: str  # the client's /24 (IPv4) or /48 (IPv6); "" when the channel gave none
    ticket: str
    previous_profile: str  # of the person's request before this one; "" for the first
    recent: int  # the person's requests in the 24 hours before this one


def network_of(ip: str | None) -> str:
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def duration_bucket(duration: timedelta) -> str:
    for limit, label in DURATION_BUCKETS:
        if duration <= limit:
            return label
    return ">8h"


def ticket_kind(ticket: str) -> str:
    """INC-4211 and inc 17 are both "INC"; no ticket is "none"."""
    match = _TICKET_KIND.match(ticket.strip())
    return match.group(0).upper()[:10] if match else ("other" if ticket.strip() else "none")


# From this many requests in 24 hours on, the count is one value: "5+".
FREQUENT = 5


def frequency_bucket(recent: int) -> str:
    return str(recent) if recent < 3 else "3-4" if recent < FREQUENT else f"{FREQUENT}+"


def values_of(observation: Observation) -> dict[str, str]:
    local = observation.local_time
    return {
        "profile": observation.profile,
        "hour": f"{local.hour:02d}",
        "day": "weekend" if local.weekday() >= 5 else "weekday",
        "network": observation.network or "none",
        "channel": observation.channel,
        "duration": duration_bucket(observation.duration),
        "sequence": f"{observation.previous_profile or '-'} > {observation.profile}",
        "frequency": frequency_bucket(observation.recent),
        "ticket": ticket_kind(observation.ticket),
    }
