"""When a requester loses standing, their requests and grants follow."""

from dataclasses import dataclass

from django.db import transaction

from audit import trail
from audit.actions import Action
from broker.lifecycle.common import GrantStatus, Status, _lock_grant, _lock_request
from broker.lifecycle.grants import _begin_revocation
from broker.lifecycle.requests import _close_request
from broker.models import AccessRequest, CatalogState, ExternalAccess, Grant
from broker.policy.locks import lock_refusal
from broker.policy.requesters import standing_problem
from broker.policy.reviews import removal_behind


@dataclass(frozen=True)
class StandingChange:
    """What `access_enforce_standing` did to one request or grant: withdrawn,
    revoked, or kept (the catalog says `on_eligibility_lost: keep`)."""

    action: str
    line: str


def access_enforce_standing(
    *,
    user_ids: list | None = None,
    profile_ids: list | None = None,
    grants_only: bool = False,
    never_keep: bool = False,
) -> list[StandingChange]:
    """Withdraw the pending requests and end the live grants of requesters who
    lost their standing (left a requesting group, account disabled, profile
    removed, a lock placed), whatever made the change: sync_catalog, the admin, OIDC, or a
    change behind Airlock's back that the periodic watch finds. Live grants
    follow the catalog's one rule, `on_eligibility_lost` (but for a disabled
    account's or a locked one's, which are always revoked). Limited to some users
    or profiles when given; `never_keep` when the loss is itself a decision about
    the access (an access review's removal). Each item changes in a transaction
    of its own."""
    keep = getattr(CatalogState.objects.first(), "on_eligibility_lost", "revoke") == "keep"
    if user_ids:
        # A sponsor's standing is their third parties' too, whatever changed it.
        sponsored = ExternalAccess.objects.filter(sponsor_id__in=user_ids)
        user_ids = [*user_ids, *sponsored.values_list("user_id", flat=True)]

    def scope(prefix: str) -> dict:
        limits = {}
        if user_ids is not None:
            limits[f"{prefix}requester__in"] = user_ids
        if profile_ids is not None:
            limits[f"{prefix}profile__in"] = profile_ids
        return limits

    live = Grant.objects.filter(
        status__in=[GrantStatus.SCHEDULED, GrantStatus.ACTIVE], **scope("request__")
    ).select_related("request__requester", "request__profile")
    pending = AccessRequest.objects.filter(status=Status.PENDING, **scope(""))
    if grants_only:
        pending = pending.none()
    problems: dict[tuple, str | None] = {}

    def problem_of(access_request: AccessRequest) -> str | None:
        key = (access_request.requester_id, access_request.profile_id)
        if key not in problems:
            problems[key] = standing_problem(access_request.requester, access_request.profile)
        return problems[key]

    changes = []
    for access_request in pending.select_related("requester", "profile").order_by("created_at"):
        if problem := problem_of(access_request):
            changes += _withdraw(access_request.pk, problem)
    for grant in live.order_by("created_at"):
        if problem := problem_of(grant.request):
            # `keep` lets live access run to its end; a grant not yet active would
            # only fail at its activation, so it ends now either way. A disabled
            # account is someone offboarded, not a change of policy: never kept.
            # A lock is containment, and an access review's removal a decision about
            # this very access: never kept either.
            requester, profile = grant.request.requester, grant.request.profile
            kept = (
                keep
                and grant.status == GrantStatus.ACTIVE
                and requester.is_active
                and lock_refusal(requester, profile) is None
                and removal_behind(requester, profile) is None
                and not never_keep
            )
            changes += _keep(grant, problem) if kept else _revoke_for_standing(grant.pk, problem)
    return changes


def _who_what(access_request: AccessRequest) -> str:
    return f"of {access_request.requester.get_username()} for {access_request.profile.slug}"


def _withdraw(request_id, problem: str) -> list[StandingChange]:
    with transaction.atomic():
        access_request = _lock_request(request_id)
        if access_request.status != Status.PENDING:
            return []  # decided meanwhile
        _close_request(
            access_request, Status.CANCELLED, None, problem, trail.SYSTEM, Action.REQUEST_WITHDRAWN
        )
    line = f"request {access_request.pk} {_who_what(access_request)} ({problem})"
    return [StandingChange("withdrawn", line)]


def _revoke_for_standing(grant_id, problem: str) -> list[StandingChange]:
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if grant.status not in (GrantStatus.SCHEDULED, GrantStatus.ACTIVE):
            return []  # ended meanwhile
        _begin_revocation(grant, actor=None, reason=problem, info=trail.SYSTEM)
    return [StandingChange("revoked", f"grant {grant.pk} {_who_what(grant.request)} ({problem})")]


def _keep(grant: Grant, problem: str) -> list[StandingChange]:
    until = f" until {grant.expires_at:%Y-%m-%d %H:%M} UTC" if grant.expires_at else ""
    line = (
        f"grant {grant.pk} {_who_what(grant.request)}{until} ({problem}; on_eligibility_lost: keep)"
    )
    return [StandingChange("kept", line)]
