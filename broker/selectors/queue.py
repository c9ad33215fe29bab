"""The approver's queue, with the hints and history that help decide."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from broker.models import AccessProfile, AccessRequest, Approval, BreakGlassReview
from broker.policy.approvers import can_approve, can_decide
from broker.selectors.requests import is_auditor

HISTORY_LENGTH = 3


def approvable_profiles(user) -> list[AccessProfile]:
    return [p for p in AccessProfile.objects.filter(enabled=True) if can_approve(user, p)]


def reviews_for(user) -> QuerySet:
    """Break-glass reviews of profiles this user approves; auditors see them all."""
    reviews = BreakGlassReview.objects.select_related(
        "request__profile", "request__requester", "closed_by"
    )
    if is_auditor(user):
        return reviews
    return reviews.filter(request__profile__in=approvable_profiles(user))


def approval_queue(
    user, *, profile: str = "", requester: str = "", older_than: timedelta | None = None
) -> QuerySet:
    """Pending requests this user may decide and has not decided yet, oldest first."""
    profiles = approvable_profiles(user)
    queryset = (
        AccessRequest.objects.filter(
            Q(profile__in=profiles) | Q(requester__external_access__sponsor=user),
            status=AccessRequest.Status.PENDING,
        )
        .exclude(requester=user)
        .exclude(decisions__approver=user)
        .select_related("profile", "requester", "requester__external_access")
        .order_by("created_at")
    )
    stepped = [p for p in profiles if p.definition.policy.steps]
    in_steps = Q(profile__in=stepped) | Q(requester__external_access__isnull=False)
    # Multi-step requests (a third party's: their sponsor first): only those whose
    # current step is this user's.
    waiting = [r.pk for r in queryset.filter(in_steps) if not can_decide(user, r)]
    if waiting:
        queryset = queryset.exclude(pk__in=waiting)
    if profile:
        queryset = queryset.filter(profile__slug=profile)
    if requester:
        queryset = queryset.filter(requester__username=requester)
    if older_than:
        queryset = queryset.filter(created_at__lte=timezone.now() - older_than)
    return queryset


@dataclass
class QueueRow:
    request: AccessRequest
    hints: list[str] = field(default_factory=list)
    history: list[AccessRequest] = field(default_factory=list)
    approvals: int = 0


def annotate_queue(requests: list[AccessRequest]) -> list[QueueRow]:
    """Risk and history for one page of the queue, in a fixed number of queries."""
    if not requests:
        return []
    page_ids = [r.pk for r in requests]
    history = recent_history(requests)
    approvals = dict(
        Approval.objects.filter(request_id__in=page_ids, decision=Approval.Decision.APPROVE)
        .values_list("request_id")
        .annotate(n=Count("pk"))
    )
    return [
        QueueRow(
            request=r,
            hints=risk_hints(r),
            history=history[(r.requester_id, r.profile_id)],
            approvals=approvals.get(r.pk, 0),
        )
        for r in requests
    ]


def recent_history(requests: list[AccessRequest]) -> dict[tuple, list[AccessRequest]]:
    """The last few earlier requests of each requester for the same profile, keyed by
    (requester id, profile id), in one query."""
    pairs = {(r.requester_id, r.profile_id) for r in requests}
    earlier = AccessRequest.objects.filter(
        requester_id__in={p[0] for p in pairs}, profile_id__in={p[1] for p in pairs}
    ).exclude(pk__in=[r.pk for r in requests])
    history = defaultdict(list)
    # What the queue and Slack's modal show of each (every click asks).
    shown = earlier.only("requester_id", "profile_id", "duration", "status", "created_at")
    for past in shown.order_by("-created_at")[: 20 * len(pairs)]:
        key = (past.requester_id, past.profile_id)
        if len(history[key]) < HISTORY_LENGTH:
            history[key].append(past)
    return history


def risk_hints(access_request: AccessRequest) -> list[str]:
    """What approvers read: the risk score, then each factor's reason."""
    reasons = [factor["why"] for factor in access_request.risk_factors]
    extension = ["more time on a live grant"] if access_request.extends_id else []
    return [f"risk {access_request.risk_score}", *extension, *reasons]
