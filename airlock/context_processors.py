from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from broker.policy.externals import external_of, is_sponsor
from broker.selectors.queue import approvable_profiles, approval_queue
from broker.selectors.requests import is_auditor, is_overseer


def airlock(request: HttpRequest) -> dict:
    """What the menu needs; each is computed only if the page shows it."""
    user = request.user
    signed_in = user.is_authenticated
    # Approvers of a profile, and sponsors (who approve their third parties' first).
    may_approve = SimpleLazyObject(
        lambda: signed_in and (bool(approvable_profiles(user)) or is_sponsor(user))
    )
    auditor = SimpleLazyObject(lambda: signed_in and is_auditor(user))
    return {
        "is_auditor": auditor,
        "may_approve": may_approve,
        "may_review": SimpleLazyObject(lambda: bool(may_approve) or bool(auditor)),
        "approvals_waiting": SimpleLazyObject(
            lambda: approval_queue(user).count() if may_approve else 0
        ),
        "may_oversee": SimpleLazyObject(lambda: signed_in and is_overseer(user)),
        "is_external": SimpleLazyObject(lambda: signed_in and external_of(user) is not None),
        "oidc_enabled": settings.OIDC_ENABLED,
        "sandbox": settings.AIRLOCK_SANDBOX,
    }
