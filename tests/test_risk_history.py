"""Risk cannot be gamed: only history that really happened lowers it, and a
channel that gives no address never counts as a known one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import mfa_step_up
from audit import trail
from audit.models import Source
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, CatalogState, Grant
from lib.durations import parse_duration
from tests.support.catalogs import POLICY_CATALOG
from tests.support.people import WEB, current_code, phone_of

SLACK = trail.RequestInfo(source=Source.SLACK, user_agent="slack:T1/U_ALICE")


@pytest.fixture
def policy_catalog(people):
    from django.contrib.auth.models import Group

    catalog_sync(catalog=parse_catalog(POLICY_CATALOG.encode()), info=trail.SYSTEM)
    people.alice.groups.add(Group.objects.get(name="oncall"))


def ask(user, duration="3h", info=WEB):
    return lifecycle.access_request_submit(
        requester=user, profile=AccessProfile.objects.get(slug="auto-db"),
        duration=parse_duration(duration), reason="INC-1 payouts", ticket="INC-1", info=info,
    )  # fmt: skip


def held(access_request, *, status: str) -> None:
    """The request approved, and its grant activated (and now `status`)."""
    access_request.status = "approved"
    access_request.save(update_fields=["status"])
    Grant.objects.create(
        request=access_request, duration=access_request.duration, created_at=timezone.now(),
        activated_at=timezone.now(), status=status,
    )  # fmt: skip


def factor_names(access_request) -> list[str]:
    return [factor["name"] for factor in access_request.risk_factors]


def test_a_cancelled_throwaway_request_does_not_lower_the_next_ones_risk(policy_catalog, people):
    throwaway = ask(people.alice)
    assert throwaway.status == "pending"  # first time (20) and 3x the default (15): 35
    lifecycle.access_request_cancel(request_id=throwaway.pk, actor=people.alice, info=WEB)

    again = ask(people.alice)

    assert factor_names(again) == ["first_time", "long_duration"]
    assert again.status == "pending" and again.approvals_required == 2


def test_a_grant_that_never_became_active_makes_no_history(policy_catalog, people):
    never_active = ask(people.alice, duration="1h")
    assert never_active.status == "approved"  # auto-approved: first time only, 20 <= 25
    Grant.objects.filter(request=never_active).update(status="failed")  # never activated
    assert factor_names(ask(people.alice, duration="1h")) == ["first_time"]


def test_grants_that_were_activated_do_lower_it(policy_catalog, people):
    held(ask(people.alice, duration="3h"), status="revoked")

    again = ask(people.alice, duration="3h")

    assert "first_time" not in factor_names(again)
    assert "long_duration" not in factor_names(again)  # 3h is her usual now


def test_a_long_grant_given_back_early_counts_for_the_time_it_was_held(policy_catalog, people):
    # A 3h grant relinquished after a minute must not make the next 3h request usual.
    start = timezone.now() - timedelta(hours=2)
    for _ in range(3):
        early = ask(people.alice, duration="3h")
        early.status = "approved"  # whether the policy approved it or not
        early.save(update_fields=["status"])
        Grant.objects.update_or_create(request=early, defaults={
            "duration": early.duration, "created_at": start, "activated_at": start,
            "ended_at": start + timedelta(minutes=1), "status": "revoked",
        })  # fmt: skip

    again = ask(people.alice, duration="3h")

    assert "first_time" not in factor_names(again)  # she did hold it
    assert "long_duration" in factor_names(again)  # but for a minute each time


def test_a_request_without_an_address_says_so_and_counts_as_unseen(policy_catalog, people):
    CatalogState.objects.update(risk={"weights": {"off_hours": 0}})  # new_address counts
    from_slack = ask(people.alice, duration="1h", info=SLACK)

    reasons = {factor["name"]: factor["why"] for factor in from_slack.risk_factors}
    assert reasons["new_address"] == "no client address (slack): counted as not seen before"
    assert from_slack.risk_score == 20 + 10


# Someone with alice's password (or an API token), from an address she never used.
THERE = {"REMOTE_ADDR": "192.0.2.66", "HTTP_USER_AGENT": "curl/8.0"}
FROM_THERE = trail.RequestInfo(source=Source.WEB, ip="192.0.2.66", user_agent="curl/8.0")


def test_signing_in_from_an_address_does_not_make_it_known(policy_catalog, people, client):
    CatalogState.objects.update(risk={"weights": {"off_hours": 0}})  # new_address counts
    client.post("/login/", {"username": "alice", "password": "x"}, **THERE)

    request = ask(people.alice, duration="1h", info=FROM_THERE)

    # A password is what the attacker has: the address is still unknown, and the
    # policy no longer approves by itself (first time 20 + new address 10 > 25).
    assert factor_names(request) == ["first_time", "new_address"]
    assert request.status == "pending"


def test_a_throwaway_request_does_not_make_an_address_known(policy_catalog, people):
    CatalogState.objects.update(risk={"weights": {"off_hours": 0}})  # new_address counts
    throwaway = ask(people.alice, duration="1h", info=FROM_THERE)
    assert "new_address" in factor_names(throwaway)
    lifecycle.access_request_cancel(request_id=throwaway.pk, actor=people.alice, info=FROM_THERE)

    again = ask(people.alice, duration="1h", info=FROM_THERE)

    assert "new_address" in factor_names(again)


def test_an_address_where_the_person_passed_mfa_is_known(policy_catalog, people):
    CatalogState.objects.update(risk={"weights": {"off_hours": 0}})  # new_address counts
    mfa_step_up(user=people.alice, code=current_code(phone_of(people.alice)), info=FROM_THERE)

    request = ask(people.alice, duration="1h", info=FROM_THERE)

    assert factor_names(request) == ["first_time"]
    assert request.status == "approved"


def test_the_usual_duration_is_the_last_twenty_grants(policy_catalog, people):
    from datetime import timedelta

    from broker.policy.risk import USUAL_OVER
    from tests.support.activity import past_grant, past_request

    profile, now = AccessProfile.objects.get(slug="auto-db"), timezone.now()
    for n in range(USUAL_OVER + 5):  # long ago 12 h each, lately 1 h each
        held = past_request(profile, people.alice, now - timedelta(days=60 - n))
        held.duration = timedelta(hours=12 if n < 5 else 1)
        held.save(update_fields=["duration"])
        past_grant(held, held.created_at, ended=held.created_at + held.duration)

    # Three times the recent habit; over the whole history (3.2 h) it would pass unseen.
    assert "long_duration" in factor_names(ask(people.alice, duration="3h"))


def test_a_live_grant_of_a_sensitive_profile_counts_and_a_plain_one_does_not(
    policy_catalog, people
):
    def hold(slug: str) -> None:
        asked = lifecycle.access_request_submit(
            requester=people.alice, profile=AccessProfile.objects.get(slug=slug),
            duration=parse_duration("30m"), reason="INC-1", info=WEB,
        )  # fmt: skip
        held(asked, status="active")

    hold("steps-db")  # sensitivity 0
    assert "several_sensitive" not in factor_names(ask(people.alice, duration="1h"))
    hold("crown-jewels")  # sensitivity 50, at or above the catalog's 30

    again = ask(people.alice, duration="1h")

    sensitive = next(f for f in again.risk_factors if f["name"] == "several_sensitive")
    assert sensitive["why"] == "also holds or asks for crown-jewels"
