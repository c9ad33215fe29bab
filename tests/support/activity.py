"""Past activity written straight into the tables, as it would stand after the
fact: requests, decisions and grants at chosen moments, and audit events dated
then (the chain stays valid: each is appended in order, with the clock set)."""

from datetime import datetime, timedelta
from unittest import mock

from django.db import transaction

from audit import trail
from broker.models import AccessRequest, Alert, Approval, BreakGlassReview, Grant


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
