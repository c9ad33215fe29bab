"""What /insights/ counts, checked against a few days whose numbers are worked
out by hand: hours held split at midnight, outcomes by day, approval latency,
revocation lag from expiry and from the revoke in the audit trail, provider
errors, anomalies, top requesters, open break-glass reviews; and each slice."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.http import QueryDict

from broker.rollup import bucket_percentile
from broker.selectors.insights import FilterError, Slice, insights, parse_slice
from tests.support.activity import NOW, at, past_grant, past_request, seed_known_days

NOV = {day: date(2026, 11, day) for day in range(1, 31)}
# Eight profiles of the test catalog, each open to engineers, whose only member is alice.
STANDING_PER_DAY = 8 * 24


@pytest.fixture
def history(people, catalog):
    seed_known_days(people, catalog)


def test_hours_held_are_split_at_midnight_and_set_beside_standing_access(history):
    found = insights(Slice(now=NOW, days=7))
    rows = {row[0]: row[1:] for row in found.tables["privilege"].rows}
    assert rows[NOV[28]] == [1.0, STANDING_PER_DAY]
    assert rows[NOV[29]] == [1.0, STANDING_PER_DAY]  # 23:00 to midnight
    assert rows[NOV[30]] == [3.0, STANDING_PER_DAY]  # to 01:00, and the break-glass since 10:00
    assert rows[NOV[24]] == [0, STANDING_PER_DAY]
    assert found.held_hours == 5.0
    assert found.standing_hours == 7 * STANDING_PER_DAY
    assert found.held_percent == round(100 * 5 / (7 * STANDING_PER_DAY), 2)


def test_requests_are_counted_by_day_and_outcome(history):
    table = insights(Slice(now=NOW, days=7)).tables["outcomes"]
    assert table.columns == [
        "day",
        "approved",
        "auto_approved",
        "break_glass",
        "denied",
        "expired",
        "cancelled",
        "pending",
    ]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows[NOV[28]] == [1, 0, 0, 0, 0, 0, 0]
    assert rows[NOV[29]] == [0, 1, 0, 0, 0, 0, 0]
    assert rows[NOV[30]] == [0, 0, 1, 1, 0, 0, 0]
    assert len(table.rows) == 7 and sum(sum(r) for r in rows.values()) == 4


def test_approval_latency_counts_only_what_a_person_decided(history):
    table = insights(Slice(now=NOW, days=7)).tables["approval-latency"]
    assert table.rows == [["test-db", 30.0, 30.0, 1], ["test-db-critical", 20.0, 20.0, 1]]
    drawn = table.chart_data()["series"]  # minutes, not the count of decisions
    assert drawn == [
        {"name": "p50", "values": [30.0, 20.0]},
        {"name": "p95", "values": [30.0, 20.0]},
    ]


def test_revocation_lag_from_expiry_and_from_the_revoke_in_the_trail(history):
    rows = {
        row[0]: row[1:] for row in insights(Slice(now=NOW, days=7)).tables["revocation-lag"].rows
    }
    assert rows[NOV[28]] == [2.0, 2.0, 2.0, 1]
    assert rows[NOV[30]] == [5.0, 5.0, 5.0, 1]
    assert rows[NOV[29]] == [None, None, None, 0]  # nothing ended that day


def test_provider_errors_per_day_name_the_provider(history):
    table = insights(Slice(now=NOW, days=7)).tables["provider-errors"]
    assert table.columns == ["day", "postgres.role", "revocation failures"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows[NOV[30]] == [1, 0] and rows[NOV[29]] == [0, 0]


def test_anomalies_top_lists_and_open_reviews(history):
    found = insights(Slice(now=NOW, days=7))
    assert found.tables["anomalies"].rows == [["high_risk", 1], ["night_approval", 1]]
    assert found.tables["top-requesters"].rows == [["alice", 4]]
    assert found.tables["top-profiles"].rows == [["test-db", 3], ["test-db-critical", 1]]
    [review] = found.tables["open-reviews"].rows
    assert review[1:3] == ["alice", "test-db"] and review[5] == 2.0


def test_each_slice_narrows_every_section(history, people):
    by_profile = insights(Slice(now=NOW, days=7, profile="test-db-critical"))
    assert by_profile.held_hours == 0 and by_profile.standing_hours == 7 * 24
    assert by_profile.tables["top-profiles"].rows == [["test-db-critical", 1]]
    assert by_profile.tables["anomalies"].rows == []

    by_channel = insights(Slice(now=NOW, days=7, channel="slack"))
    assert by_channel.held_hours == 2.0
    assert by_channel.tables["top-requesters"].rows == [["alice", 1]]

    by_group = insights(Slice(now=NOW, days=7, group="sre"))  # bob and carol ask for nothing
    assert by_group.held_hours == 0 and by_group.standing_hours == 0
    assert by_group.held_percent is None
    assert by_group.tables["top-requesters"].rows == []
    assert insights(Slice(now=NOW, days=7, group="engineers")).held_hours == 5.0

    quarter = insights(Slice(now=NOW, days=90))
    assert quarter.tables["top-requesters"].rows == [["alice", 5]]
    assert quarter.held_hours == 6.0


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("days=14", "the period is 7, 30, 90 days; not '14'"),
        ("days=", "the period is 7, 30, 90 days; not ''"),
        ("profile=nope", "no profile is named 'nope'"),
        ("group=nope", "no group is named 'nope'"),
        ("channel=scim", "the channel is one of web, slack, api, cli; not 'scim'"),
        (
            "profile=a%00b",
            "a profile or group name holds at most 150 characters and no control character",
        ),
        (
            "group=" + "g" * 151,
            "a profile or group name holds at most 150 characters and no control character",
        ),
    ],
)
def test_a_bad_slice_is_named(catalog, query, error):
    with pytest.raises(FilterError) as refused:
        parse_slice(QueryDict(query), NOW)
    assert str(refused.value) == error


def test_the_slice_read_from_a_query_string(catalog):
    piece = parse_slice(QueryDict("days=7&profile=test-db&group=sre&channel=cli"), NOW)
    assert piece == Slice(now=NOW, days=7, profile="test-db", group="sre", channel="cli")
    assert piece.start == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_slice(QueryDict(""), NOW).days == 30


def test_a_percentile_is_the_bound_of_its_bucket():
    assert bucket_percentile(Counter(), 0.95) == 0
    assert bucket_percentile(Counter({5: 1}), 0.95) == 5
    assert bucket_percentile(Counter({1: 2, 2: 2}), 0.5) == 1
    assert bucket_percentile(Counter({1: 94, 30: 6}), 0.95) == 30
    assert bucket_percentile(Counter({1: 95, 30: 5}), 0.95) == 1


def test_a_grant_whose_revocation_failed_is_still_held(history, people, catalog):
    from broker.models import Grant

    stuck = past_request(catalog["test-db"], people.alice, at(27, 8), approver=people.bob)
    grant = past_grant(stuck, at(27, 8, 10), ended=at(27, 9, 10, 1))
    Grant.objects.filter(pk=grant.pk).update(status=Grant.Status.REVOKE_FAILED)
    found = insights(Slice(now=NOW, days=7))
    held = {row[0]: row[1] for row in found.tables["privilege"].rows}
    assert held[NOV[27]] == round((24 - 8 - 10 / 60), 1)  # to midnight, and on
    assert held[NOV[28]] == 24 + 1.0
    lag = {row[0]: row[1:] for row in found.tables["revocation-lag"].rows}
    assert lag[NOV[27]] == [None, None, None, 0]  # never dead, so no lag to show


def test_standing_access_of_a_group_counts_what_its_members_may_ask_for(history, people):
    from django.contrib.auth.models import Group

    Group.objects.create(name="oncall").user_set.add(people.alice)  # alice is an engineer too
    assert insights(Slice(now=NOW, days=7, group="oncall")).standing_hours == 7 * STANDING_PER_DAY


def test_an_expiry_after_a_first_approval_is_no_decision_time(history, people, catalog):
    expired = past_request(
        catalog["test-db-critical"],
        people.alice,
        at(27, 8),
        status="expired",
        approver=people.bob,
        wait=timedelta(hours=20),
    )
    rows = insights(Slice(now=NOW, days=7)).tables["approval-latency"].rows
    assert ["test-db-critical", 20, 20, 1] in rows, expired
