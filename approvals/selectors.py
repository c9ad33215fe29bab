"""The approver's queue, with the hints and history that help decide."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Avg, Count, QuerySet
from django.utils import timezone

from approvals.models import Approval
from approvals.policy import can_approve
from broker.durations import format_duration
from broker.models import AccessProfile, AccessRequest

BUSINESS_HOURS = range(8, 18)  # UTC until requesters' time zones are known
HISTORY_LENGTH = 3


def approvable_profiles(user) -> list[AccessProfile]:
    return [p for p in AccessProfile.objects.filter(enabled=True) if can_approve(user, p)]


def approval_queue(
    user, *, profile: str = "", requester: str = "", older_than: timedelta | None = None
) -> QuerySet:
    """Pending requests this user may decide and has not decided yet, oldest first."""
    queryset = (
        AccessRequest.objects.filter(
            status=AccessRequest.Status.PENDING, profile__in=approvable_profiles(user)
        )
        .exclude(requester=user)
        .exclude(decisions__approver=user)
        .select_related("profile", "requester")
        .order_by("created_at")
    )
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
    """Hints and history for one page of the queue, in a fixed number of queries."""
    if not requests:
        return []
    pairs = {(r.requester_id, r.profile_id) for r in requests}
    page_ids = [r.pk for r in requests]
    earlier = AccessRequest.objects.filter(
        requester_id__in={p[0] for p in pairs}, profile_id__in={p[1] for p in pairs}
    ).exclude(pk__in=page_ids)
    usual = {
        (row["requester_id"], row["profile_id"]): row
        for row in earlier.values("requester_id", "profile_id").annotate(
            count=Count("pk"), average=Avg("duration")
        )
    }
    history = defaultdict(list)
    for past in earlier.select_related("profile").order_by("-created_at")[: 20 * len(pairs)]:
        key = (past.requester_id, past.profile_id)
        if len(history[key]) < HISTORY_LENGTH:
            history[key].append(past)
    approvals = dict(
        Approval.objects.filter(request_id__in=page_ids, decision=Approval.Decision.APPROVE)
        .values_list("request_id")
        .annotate(n=Count("pk"))
    )
    rows = []
    for r in requests:
        key = (r.requester_id, r.profile_id)
        rows.append(
            QueueRow(
                request=r,
                hints=_hints(r, usual.get(key)),
                history=history[key],
                approvals=approvals.get(r.pk, 0),
            )
        )
    return rows


def _hints(r: AccessRequest, usual: dict | None) -> list[str]:
    hints = []
    if not usual:
        hints.append(f"first request for {r.profile.slug}")
    elif usual["average"] and r.duration > 2 * usual["average"]:
        times = r.duration / usual["average"]
        hints.append(f"{times:.0f}x usual duration ({format_duration(usual['average'])})")
    if r.created_at.hour not in BUSINESS_HOURS or r.created_at.weekday() >= 5:
        hints.append("asked off-hours (UTC)")
    if r.duration > r.profile.policy.duration_default:
        hints.append(
            f"longer than the default {format_duration(r.profile.policy.duration_default)}"
        )
    return hints
