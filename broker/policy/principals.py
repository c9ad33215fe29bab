"""Who a catalog's `groups:`/`users:` lists name. Group membership lives in
Django groups, which `sync_catalog` fills from the catalog's declared groups."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from broker.catalog.spec import Principals
from broker.policy.externals import external_of


def users_matching(principals: Principals) -> QuerySet:
    """Active staff the principals name: a third party is never an approver, a
    reviewer or the security role, whatever group the catalog puts them in."""
    return (
        get_user_model()
        .objects.filter(is_active=True, external_access__isnull=True)
        .filter(Q(username__in=principals.users) | Q(groups__name__in=principals.groups))
        .distinct()
    )


def principal_matches(user, principals: Principals) -> bool:
    if not user.is_active or external_of(user) is not None:
        return False
    if user.get_username() in principals.users:
        return True
    return user.groups.filter(name__in=principals.groups).exists()


def principal_matches_names(username: str, groups: set[str], principals: Principals) -> bool:
    """principal_matches for a person already read (an active member of staff): no query."""
    return username in principals.users or not groups.isdisjoint(principals.groups)
