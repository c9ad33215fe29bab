"""Risk factors, table-driven: each one's true and false case, deterministic."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broker.catalog.spec import RiskSpec
from broker.policy.risk import Facts, assess

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
QUIET = Facts(
    profile="prod-db",
    sensitivity=0,
    duration=timedelta(hours=1),
    usual_duration=timedelta(hours=1),
    default_duration=timedelta(hours=1),
    first_time=False,
    local_time=MONDAY_NOON,
    recent_requests=0,
    recent_denials=0,
    new_address=False,
)


def facts(**changes) -> Facts:
    return Facts(**{**QUIET.__dict__, **changes})


def test_a_quiet_request_has_no_risk():
    assessment = assess(QUIET, RiskSpec())
    assert (assessment.score, assessment.factors) == (0, [])
    assert assessment.reasons() == "no risk factors"


@pytest.mark.parametrize(
    ("changes", "factor", "points", "why"),
    [
        ({"sensitivity": 30}, "sensitivity", 30, "prod-db is sensitive (30/50)"),
        ({"first_time": True}, "first_time", 20, "first time for prod-db"),
        ({"duration": timedelta(hours=4)}, "long_duration", 15, "4x usual duration (1h)"),
        ({"usual_duration": None, "duration": timedelta(hours=3)}, "long_duration", 15,
         "3x default duration (1h)"),
        ({"local_time": datetime(2026, 11, 30, 23, 30, tzinfo=UTC)}, "off_hours", 10,
         "off-hours (Mon 23:30 UTC)"),
        ({"local_time": datetime(2026, 11, 29, 12, 0, tzinfo=UTC)}, "off_hours", 10,
         "off-hours (Sun 12:00 UTC)"),
        ({"recent_requests": 2}, "burst", 15, "3 requests within an hour"),
        ({"recent_denials": 1}, "recent_denial", 20, "1 denial(s) in the last 7 days"),
        ({"new_address": True}, "new_address", 10, "from an address or device not seen before"),
        ({"other_sensitive": ("aws-admin", "vault-root")}, "several_sensitive", 15,
         "also holds or asks for aws-admin, vault-root"),
    ],
)  # fmt: skip
def test_each_factor_when_it_applies(changes, factor, points, why):
    assessment = assess(facts(**changes), RiskSpec())
    assert [(f.name, f.points, f.why) for f in assessment.factors] == [(factor, points, why)]
    assert assessment.score == points


@pytest.mark.parametrize(
    "changes",
    [
        {"duration": timedelta(hours=2)},  # exactly twice is not "over twice"
        {"recent_requests": 1},  # two in an hour is not a burst
        {"local_time": datetime(2026, 11, 30, 8, 0, tzinfo=UTC)},  # opening time
        {"local_time": datetime(2026, 11, 30, 17, 59, tzinfo=UTC)},
    ],
)
def test_each_factor_when_it_does_not(changes):
    assert assess(facts(**changes), RiskSpec()).score == 0


def test_weights_and_business_hours_come_from_the_catalog():
    spec = RiskSpec.model_validate(
        {"weights": {"first_time": 50, "off_hours": 0},
         "business_hours": {"start": 0, "end": 24, "days": [0, 1, 2, 3, 4, 5, 6]}}
    )  # fmt: skip
    night = facts(first_time=True, local_time=datetime(2026, 11, 29, 3, 0, tzinfo=UTC))
    assessment = assess(night, spec)
    assert [(f.name, f.points) for f in assessment.factors] == [("first_time", 50)]


def test_the_requesters_time_zone_decides_off_hours():
    # 23:00 UTC on a Monday is 08:00 on Tuesday in Tokyo: business hours there.
    tokyo = datetime(2026, 11, 30, 23, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    assert assess(facts(local_time=tokyo), RiskSpec()).score == 0


def test_factors_add_up_in_a_fixed_order():
    everything = facts(sensitivity=10, first_time=True, duration=timedelta(hours=5),
                       recent_denials=2, new_address=True)  # fmt: skip
    assessment = assess(everything, RiskSpec())
    assert [f.name for f in assessment.factors] == [
        "sensitivity", "first_time", "long_duration", "recent_denial", "new_address",
    ]  # fmt: skip
    assert assessment.score == 10 + 20 + 15 + 20 + 10
