"""Who a catalog's `groups:`/`users:` lists name. Group membership lives in
Django groups, which `sync_catalog` fills from the catalog's declared groups."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from broker.catalog.spec import Principals


def users_matching(principals: Principals) -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username__in=principals.users) | Q(groups__name__in=principals.groups))
        .distinct()
    )


def principal_matches(user, principals: Principals) -> bool:
    if not user.is_active:
        return False
    if user.get_username() in principals.users:
        return True
    return user.groups.filter(name__in=principals.groups).exists()


def principal_matches_names(username: str, groups: set[str], principals: Principals) -> bool:
    """principal_matches for a person already read (an active one): no query."""
    return username in principals.users or not groups.isdisjoint(principals.groups)
