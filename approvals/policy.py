"""Separation of duties: who may decide a request, and how many must agree."""

from django.db.models import QuerySet

from approvals.models import Approval
from broker.models import AccessProfile, AccessRequest
from broker.policy import principal_matches, users_matching


def can_approve(user, profile: AccessProfile) -> bool:
    return principal_matches(user, profile.policy.approvers)


def can_decide(user, access_request: AccessRequest) -> bool:
    """An eligible approver of the profile who is not the requester."""
    return user.pk != access_request.requester_id and can_approve(user, access_request.profile)


def eligible_approvers(access_request: AccessRequest) -> QuerySet:
    return users_matching(access_request.profile.policy.approvers).exclude(
        pk=access_request.requester_id
    )


def approvals_count(access_request: AccessRequest) -> int:
    # The requester can never record a decision, but exclude them anyway so a
    # bad row could never count towards their own request.
    return (
        access_request.decisions.filter(decision=Approval.Decision.APPROVE)
        .exclude(approver_id=access_request.requester_id)
        .count()
    )
