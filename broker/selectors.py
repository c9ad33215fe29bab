from django.db.models import QuerySet

from broker.models import AccessRequest, Grant


def requests_of(user, limit: int = 20) -> QuerySet:
    return AccessRequest.objects.filter(requester=user).select_related("profile")[:limit]


def live_grants_of(user) -> QuerySet:
    return (
        Grant.objects.filter(
            request__requester=user,
            status__in=[Grant.Status.SCHEDULED, Grant.Status.ACTIVE, Grant.Status.REVOKING],
        )
        .select_related("request__profile")
        .order_by("expires_at")
    )
