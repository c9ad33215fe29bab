"""Separation of duties: who may decide a request, in which step, and how many
must agree."""

from collections import Counter
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from broker.catalog.spec import Principals
from broker.models import AccessProfile, AccessRequest, Approval
from broker.policy.externals import sponsor_principals
from broker.policy.locks import is_security, lock_refusal, locked_user_ids
from broker.policy.principals import principal_matches, users_matching


def can_approve(user, profile: AccessProfile) -> bool:
    """An approver of the profile in any step (they see and may revoke its grants)."""
    definition = profile.definition
    return principal_matches(user, definition.approvers) or any(
        principal_matches(user, step.approvers) for step in definition.policy.steps
    )


def profile_approvers(profile: AccessProfile) -> QuerySet:
    """Everyone who approves the profile in some step."""
    definition = profile.definition
    combined = users_matching(definition.approvers)
    for step in definition.policy.steps:
        combined = combined | users_matching(step.approvers)
    return combined.distinct()


def step_needs(access_request: AccessRequest) -> list[tuple[Principals, int]]:
    """Each step's approvers and how many of them must approve. Approvals the
    risk adds go to the last step. A third party's sponsor approves first."""
    needs = [(s.approvers, s.approvals) for s in access_request.profile.definition.approval_steps]
    sponsor = sponsor_principals(access_request.requester)
    extra = access_request.approvals_required - sum(n for _, n in needs) - (1 if sponsor else 0)
    if extra > 0:
        approvers, needed = needs[-1]
        needs[-1] = (approvers, needed + extra)
    return [(sponsor, 1), *needs] if sponsor else needs


def current_step(access_request: AccessRequest) -> int | None:
    """The first step still short of approvals (None when all are done). An
    approval by someone locked since does not count while the lock holds: a
    phished approver's yes is not a yes."""
    done = Counter(
        access_request.decisions.filter(decision=Approval.Decision.APPROVE)
        .exclude(approver_id=access_request.requester_id)
        .exclude(approver_id__in=locked_user_ids())
        .values_list("step", flat=True)
    )
    for index, (_, needed) in enumerate(step_needs(access_request)):
        if done[index] < needed:
            return index
    return None


def step_principals(access_request: AccessRequest, index: int) -> list[Principals]:
    principals = [step_needs(access_request)[index][0]]
    if index == 0 and sponsor_principals(access_request.requester) is not None:
        return principals  # the sponsor's own step: no fallback group stands in
    escalation = access_request.profile.definition.policy.reminders
    if access_request.escalated_at and escalation and escalation.escalate_to:
        principals.append(escalation.escalate_to)  # the fallback group joins in
    return principals


def can_decide(user, access_request: AccessRequest) -> bool:
    """An approver of the step the request waits for, who is not the requester."""
    if user.pk == access_request.requester_id:
        return False
    step = current_step(access_request)
    if step is None:
        return False
    return any(principal_matches(user, p) for p in step_principals(access_request, step))


def eligible_approvers(access_request: AccessRequest, step: int | None = None) -> QuerySet:
    """Who could decide the given step (by default the one it waits for)."""
    index = current_step(access_request) if step is None else step
    if index is None:
        return users_matching(Principals()).none()
    querysets = [users_matching(p) for p in step_principals(access_request, index)]
    combined = querysets[0]
    for other in querysets[1:]:
        combined = combined | other
    return combined.exclude(pk=access_request.requester_id).distinct()


@dataclass(frozen=True)
class Refusal:
    """Why someone may not decide a request now. `conflict`: the request's state
    stands in the way (someone may have just won a race), not the person's rights."""

    message: str
    conflict: bool = False


def decision_refusal(user, access_request: AccessRequest) -> Refusal | None:
    """May `user` approve or deny `access_request` now? None if so. The one rule:
    the lifecycle enforces it, and the web and Slack ask it before they offer the
    buttons or take a click. (The MFA step-up is asked afterwards.)"""
    profile = access_request.profile
    if user.pk == access_request.requester_id:
        return Refusal("you cannot decide your own request")
    if locked := lock_refusal(user):
        return Refusal(f"you decide nothing while {locked}")
    if access_request.status != AccessRequest.Status.PENDING:
        if not can_approve(user, profile):
            return Refusal(f"you are not an approver for {profile.slug}")
        return Refusal(f"the request is already {access_request.status}", conflict=True)
    if not can_decide(user, access_request):
        if can_approve(user, profile):
            step = (current_step(access_request) or 0) + 1
            return Refusal(f"this request waits for step {step} approvers; you are not one")
        return Refusal(f"you are not an approver for {profile.slug}")
    if access_request.pending_until <= timezone.now():
        return Refusal("the request has expired", conflict=True)
    if access_request.decisions.filter(approver=user).exists():
        return Refusal("you have already decided this request", conflict=True)
    return None


def label_refusal(user, access_request: AccessRequest) -> str | None:
    """Why `user` may not mark the request unusual or normal, or None: approvers of
    its profile and the security team may, never the requester, nobody locked."""
    if access_request.requester_id == user.pk:
        return "someone else must judge your own request"
    if not (can_approve(user, access_request.profile) or is_security(user)):
        return (
            f"only approvers of {access_request.profile.slug} and the security team "
            "label its requests"
        )
    if locked := lock_refusal(user):
        return f"not now: {locked}"
    return None
