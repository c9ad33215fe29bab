"""Past activity written straight into the tables, as it would stand after the
fact: requests, decisions and grants at chosen moments, and audit events dated
then (the chain stays valid: each is appended in order, with the clock set)."""

from datetime import UTC, datetime, timedelta
from unittest import mock

from django.db import transaction

from audit import trail
from audit.actions import Action
from broker.models import AccessRequest, Alert, Approval, BreakGlassReview, Grant

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event_at(at: datetime, action: str, target, actor=None) -> None:
    with mock.patch("django.utils.timezone.now", return_value=at), transaction.atomic():
        trail.record(action=action, info=trail.SYSTEM, actor=actor, target=target)


def past_request(
    profile,
    requester,
    created: datetime,
    *,
    status="approved",
    approver=None,
    decision="approve",
    wait=timedelta(minutes=10),
    source="web",
    break_glass=False,
) -> AccessRequest:
    """A request from `created`, decided `wait` later (by `approver`, or by policy)."""
    decided = None if status == "pending" else created + wait
    access_request = AccessRequest.objects.create(
        profile=profile,
        requester=requester,
        duration=timedelta(hours=1),
        reason="investigating INC-1",
        ticket="INC-1",
        status=status,
        source=source,
        created_at=created,
        pending_until=created + timedelta(hours=1),
        decided_at=decided,
        break_glass=break_glass,
    )
    if approver is not None:
        Approval.objects.create(
            request=access_request,
            approver=approver,
            decision=decision,
            source=source,
            mfa_verified_at=decided,
            created_at=decided,
        )
    if break_glass:
        BreakGlassReview.objects.create(request=access_request, due_at=created + timedelta(days=1))
    return access_request


def past_grant(
    access_request,
    activated: datetime,
    *,
    lasts=timedelta(hours=1),
    ended: datetime | None = None,
    end_reason="expired",
) -> Grant:
    """The request's grant, live from `activated` for `lasts`; `ended` at the source then
    (None: still live)."""
    return Grant.objects.create(
        request=access_request,
        status=Grant.Status.REVOKED if ended else Grant.Status.ACTIVE,
        duration=lasts,
        created_at=activated,
        activated_at=activated,
        expires_at=activated + lasts,
        ended_at=ended,
        end_reason=end_reason if ended else "",
    )


def past_alert(kind: str, at: datetime, **subjects) -> Alert:
    return Alert.objects.create(
        kind=kind, key=f"{kind}:{at.isoformat()}", message=kind, subjects=subjects, created_at=at
    )


def seed_month(people, catalog, now: datetime, days: int = 30) -> None:
    """A month of alice's access, different every day: requests approved by bob
    (after 5 to 50 minutes), by policy, denied, expired, cancelled; grants dead
    at the source 1 to 4 s after expiry, some relinquished; a few alerts; and a
    break-glass still under review."""
    profiles = [catalog["test-db"], catalog["test-db-critical"]]
    sources = ["web", "slack", "api", "cli"]
    for day in range(days, 0, -1):
        morning = (now - timedelta(days=day)).replace(hour=9, minute=0, second=0, microsecond=0)
        for n in range(day % 4 + 1):
            asked = morning + timedelta(hours=2 * n)
            profile, source = profiles[(day + n) % 2], sources[(day + n) % 4]
            wait = timedelta(minutes=5 + (day * 7 + n) % 46)
            approved = past_request(
                profile, people.alice, asked, approver=people.bob, wait=wait, source=source
            )
            ends = asked + wait + timedelta(hours=1, seconds=1 + n % 4)
            relinquished = n == 2
            grant = past_grant(
                approved,
                asked + wait,
                ended=asked + wait + timedelta(minutes=20) if relinquished else ends,
                end_reason="relinquished" if relinquished else "expired",
            )
            if relinquished:
                event_at(grant.ended_at - timedelta(seconds=3), "grant.revoke_requested", grant)
        if day % 3 == 0:
            past_request(profiles[0], people.alice, morning, wait=timedelta(0), source="slack")
        if day % 5 == 0:
            past_request(
                profiles[1],
                people.alice,
                morning,
                status="denied",
                approver=people.bob,
                decision="deny",
            )
        if day % 7 == 0:
            past_request(
                profiles[0], people.alice, morning, status="expired", wait=timedelta(hours=1)
            )
            past_alert("night_approval", morning, user="alice", profile=profiles[0].slug)
    glass = past_request(
        profiles[1], people.alice, now - timedelta(hours=5), approver=people.alice, break_glass=True
    )
    past_grant(glass, now - timedelta(hours=5), ended=now - timedelta(hours=4))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def seed_known_days(people, catalog) -> None:
    """A few days up to NOW whose figures tests work out by hand."""
    db, critical = catalog["test-db"], catalog["test-db-critical"]
    # Approved by bob after 30 minutes; live an hour; dead at the source 2 s after expiry.
    by_bob = past_request(
        db, people.alice, at(28, 9), approver=people.bob, wait=timedelta(minutes=30)
    )
    past_grant(by_bob, at(28, 9, 31), ended=at(28, 10, 31, 2))
    # Approved by policy from Slack at 23:00; relinquished at 01:00, 5 s after asking.
    by_policy = past_request(db, people.alice, at(29, 23), wait=timedelta(0), source="slack")
    relinquished = past_grant(
        by_policy, at(29, 23), lasts=timedelta(hours=4), ended=at(30, 1), end_reason="relinquished"
    )
    event_at(at(30, 0, 59, 55), Action.GRANT_REVOKE_REQUESTED, relinquished, people.alice)
    event_at(at(30, 0, 59, 57), Action.GRANT_REVOKE_RETRY, relinquished)
    # Denied by bob after 20 minutes, from the API.
    past_request(
        critical,
        people.alice,
        at(30, 8),
        status="denied",
        approver=people.bob,
        decision="deny",
        wait=timedelta(minutes=20),
        source="api",
    )
    # Break-glass at 10:00, still live at noon, its review open.
    glass = past_request(db, people.alice, at(30, 10), approver=people.alice, break_glass=True)
    past_grant(glass, at(30, 10), lasts=timedelta(hours=8))
    # Forty days ago: outside every period but 90 days.
    old = past_request(db, people.alice, NOW - timedelta(days=40), approver=people.bob)
    past_grant(old, NOW - timedelta(days=40), ended=NOW - timedelta(days=40) + timedelta(hours=1))
    past_alert("night_approval", at(29, 3), user="alice", profile="test-db", target="postgres:x")
    past_alert("high_risk", at(30, 3), user="charlie")
