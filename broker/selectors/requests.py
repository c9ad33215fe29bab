from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404

from audit.actions import Action
from audit.models import AuditEvent
from broker.models import AccessRequest, Grant
from broker.policy.approvers import can_approve, can_decide
from broker.policy.externals import external_of
from broker.policy.locks import is_security

LIVE = [Grant.Status.SCHEDULED, Grant.Status.ACTIVE, Grant.Status.REVOKING]


def is_auditor(user) -> bool:
    if external_of(user) is not None:
        return False  # a third party reads only their own
    return user.is_superuser or user.groups.filter(name=settings.AIRLOCK_AUDITOR_GROUP).exists()


UNUSUAL_FOR_REQUESTER = "unusual for the learned model (its reasons are for approvers)"


def risk_factors_seen_by(viewer, access_request: AccessRequest) -> list[dict]:
    """The risk factors as this viewer may read them: the requester (or nobody in
    particular) does not get the model's reasons, which spell out what would look
    usual (the hours, networks and channel to use)."""
    if viewer is not None and viewer.pk != access_request.requester_id:
        return access_request.risk_factors
    return [
        {**f, "why": UNUSUAL_FOR_REQUESTER} if f["name"] == "unusual" else f
        for f in access_request.risk_factors
    ]


def is_overseer(user) -> bool:
    """The security role, auditors and admins: who sees the whole picture (locks, insights)."""
    return is_security(user) or is_auditor(user)


def can_view_request(user, access_request: AccessRequest) -> bool:
    """The requester, approvers of the profile, auditors and admins, whoever may
    decide it now (a fallback group it was escalated to), and a third party's
    sponsor."""
    sponsor = external_of(access_request.requester)
    return (
        access_request.requester_id == user.pk
        or can_approve(user, access_request.profile)
        or is_auditor(user)
        or (access_request.escalated_at is not None and can_decide(user, access_request))
        or (sponsor is not None and sponsor.sponsor_id == user.pk)
    )


def visible_request(user, request_id) -> AccessRequest:
    """The request, if `user` may see it; otherwise Http404, exactly as if it did not
    exist, so nobody learns which ids are real."""
    access_request = (
        AccessRequest.objects.select_related("profile", "requester").filter(pk=request_id).first()
    )
    if access_request is None or not can_view_request(user, access_request):
        raise Http404("no such request")
    return access_request


def visible_grant(user, grant_id) -> Grant:
    grant = (
        Grant.objects.select_related("request__profile", "request__requester")
        .filter(pk=grant_id)
        .first()
    )
    if grant is None or not can_view_request(user, grant.request):
        raise Http404("no such grant")
    return grant


def requests_of(user, limit: int = 20) -> QuerySet:
    return (
        AccessRequest.objects.filter(requester=user)
        .select_related("profile", "grant")
        .order_by("-created_at")[:limit]
    )


def live_grants_of(user) -> QuerySet:
    return (
        Grant.objects.filter(request__requester=user, status__in=LIVE)
        .select_related("request__profile")
        .order_by("expires_at")
    )


def request_timeline(access_request: AccessRequest) -> QuerySet:
    """Every audit event about the request and its grant, oldest first."""
    targets = Q(target_type="accessrequest", target_id=str(access_request.pk))
    grant = Grant.objects.filter(request=access_request).only("pk").first()
    if grant is not None:
        targets |= Q(target_type="grant", target_id=str(grant.pk))
    return AuditEvent.objects.filter(targets).order_by("seq")


def how_approvers_were_asked(access_request: AccessRequest) -> list[dict]:
    """What each notifier reported for the request (channel, and whom it reached)."""
    reports = AuditEvent.objects.filter(
        target_type="accessrequest",
        target_id=str(access_request.pk),
        action=Action.REQUEST_APPROVERS_NOTIFIED,
    ).order_by("seq")
    return [event.data for event in reports]


@dataclass(frozen=True)
class Step:
    """One step of a request's life as the stepper shows it: `state` is done,
    current, failed or todo; `at` is when it happened (or is due)."""

    label: str
    state: str
    at: datetime | None = None


def request_steps(access_request: AccessRequest, grant: Grant | None) -> list[Step]:
    """Requested → approved → active → ended, as far as the request has gone."""
    Status, GrantStatus = AccessRequest.Status, Grant.Status
    asked = Step("Requested", "done", access_request.created_at)
    active, ended = Step("Active", "todo"), Step("Ended", "todo")
    if access_request.status == Status.PENDING:
        return [asked, Step("Waiting for approval", "current"), active, ended]
    if access_request.status != Status.APPROVED:
        label = access_request.get_status_display()
        return [asked, Step(label, "failed", access_request.decided_at)]
    label = "Break-glass" if access_request.break_glass else "Approved"
    approved = Step(label, "done", access_request.decided_at)
    if grant is None or grant.status == GrantStatus.SCHEDULED:
        return [asked, approved, Step("Scheduled", "current", access_request.start_at), ended]
    if grant.status == GrantStatus.FAILED:
        return [asked, approved, Step("Activation failed", "failed", grant.ended_at)]
    if grant.activated_at is None:  # revoked (or locked out) while still scheduled
        return [asked, approved, Step("Ended before it began", "failed", grant.ended_at)]
    if grant.status == GrantStatus.REVOKE_FAILED:
        failed = Step("Revocation failed", "failed", grant.last_attempt_at)
        return [asked, approved, Step("Active", "done", grant.activated_at), failed]
    if grant.ended_at is None:
        label = "Ending" if grant.status == GrantStatus.REVOKING else "Ends"
        ending = Step(label, "todo", grant.expires_at)
        return [asked, approved, Step("Active", "current", grant.activated_at), ending]
    done = Step("Active", "done", grant.activated_at)
    return [asked, approved, done, Step("Ended", "done", grant.ended_at)]


def window_used(grant: Grant, now: datetime) -> int | None:
    """How much of a live grant's window has passed, in percent (None when not live)."""
    if grant.status != Grant.Status.ACTIVE or not (grant.activated_at and grant.expires_at):
        return None
    whole = (grant.expires_at - grant.activated_at).total_seconds()
    passed = (now - grant.activated_at).total_seconds()
    return max(0, min(100, round(100 * passed / whole))) if whole > 0 else 100
