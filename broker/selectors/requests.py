from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404

from audit.actions import Action
from audit.models import AuditEvent
from broker.models import AccessRequest, Grant
from broker.policy.approvers import can_approve, can_decide

LIVE = [Grant.Status.SCHEDULED, Grant.Status.ACTIVE, Grant.Status.REVOKING]


def is_auditor(user) -> bool:
    return user.is_superuser or user.groups.filter(name=settings.AIRLOCK_AUDITOR_GROUP).exists()


def can_view_request(user, access_request: AccessRequest) -> bool:
    """The requester, approvers of the profile, auditors and admins, and whoever
    may decide it now (a fallback group it was escalated to)."""
    return (
        access_request.requester_id == user.pk
        or can_approve(user, access_request.profile)
        or is_auditor(user)
        or (access_request.escalated_at is not None and can_decide(user, access_request))
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
