"""The audit log as auditors filter it, on the web and through the API."""

from datetime import datetime

from django.db.models import Q, QuerySet

from audit.export import parse_range
from audit.models import AuditEvent, Source
from broker.models import AccessRequest, Grant


class FilterError(ValueError):
    pass


def moments(filters: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    """The filters' since and until as moments; FilterError names a bad one."""
    try:
        return parse_range(filters["since"], filters["until"])
    except ValueError as exc:
        raise FilterError(str(exc)) from None


def filtered_events(params) -> tuple[QuerySet, dict[str, str]]:
    """Audit events matching the page's filters; raises FilterError on bad input."""
    filters = {
        key: params.get(key, "").strip()[:150]
        for key in ("since", "until", "actor", "action", "source", "profile")
    }
    events = AuditEvent.objects.all()
    since, until = moments(filters)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lte=until)
    if filters["actor"]:
        events = events.filter(actor=filters["actor"])
    if filters["action"]:
        events = events.filter(action__startswith=filters["action"])
    if filters["source"]:
        if filters["source"] not in Source.values:
            raise FilterError(f"unknown channel {filters['source']!r}")
        events = events.filter(source=filters["source"])
    if filters["profile"]:
        requests = AccessRequest.objects.filter(profile__slug=filters["profile"])
        request_ids = [str(pk) for pk in requests.values_list("pk", flat=True)]
        grant_ids = [
            str(pk)
            for pk in Grant.objects.filter(request__in=requests).values_list("pk", flat=True)
        ]
        events = events.filter(
            Q(target_type="accessrequest", target_id__in=request_ids)
            | Q(target_type="grant", target_id__in=grant_ids)
        )
    return events, filters
