"""The only place where access requests and grants change state.

Every transition locks its row (or claims it with skip_locked), checks the old
state, writes the new state and its audit event in one transaction, and is
safe to call twice. Views, the API, Slack, admin actions and Celery tasks call
these functions and nothing else.
"""

import json
import logging
import re
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import recent_step_up, recent_step_up_record
from audit import trail
from audit.models import AuditEvent
from broker.models import (
    AccessProfile,
    AccessRequest,
    Approval,
    BreakGlassReview,
    CatalogState,
    Grant,
)
from broker.policy import risk, rules
from broker.policy.approvers import (
    can_approve,
    can_decide,
    current_step,
    eligible_approvers,
    step_needs,
)
from broker.policy.requesters import can_request, standing_problem
from integrations.providers import GrantContext, Issued, ProviderError, get_provider
from lib.durations import format_duration
from lib.secrets import decrypt_secret, encrypt_secret
from lib.sshkeys import normalize_public_key

logger = logging.getLogger(__name__)

Status = AccessRequest.Status
GrantStatus = Grant.Status
MAX_REASON_LENGTH = 2000
ACTIVATION_MAX_ATTEMPTS = 5
# A grant approved this long ago and still scheduled lost its activation task.
SCHEDULED_GRACE = timedelta(seconds=30)
MAX_START_AHEAD = timedelta(days=7)
# An approved extension is settled once it was applied or failed for good.
EXTENSION_SETTLED = ("grant.extended", "grant.extension_failed")


class LifecycleError(Exception):
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidRequest(LifecycleError):
    code = "invalid"


class NotAllowed(LifecycleError):
    code = "forbidden"


class StepUpRequired(NotAllowed):
    code = "step_up_required"


class NotFound(LifecycleError):
    code = "not_found"


class Conflict(LifecycleError):
    """The object is not in a state that allows this (often: someone else won a race)."""

    code = "conflict"


class TryAgainLater(Exception):
    """A provider failed transiently (the attempt is recorded), or it is too early:
    the caller should retry, after `retry_in` seconds when that is known."""

    def __init__(self, message: str, retry_in: float | None = None):
        super().__init__(message)
        self.retry_in = retry_in


# --- requests ---------------------------------------------------------------


def access_request_submit(
    *,
    requester,
    profile: AccessProfile,
    duration: timedelta | None = None,
    reason: str = "",
    ticket: str = "",
    ssh_public_key: str = "",
    start_at: datetime | None = None,
    break_glass: bool = False,
    info: trail.RequestInfo,
) -> AccessRequest:
    """Validate, weigh the risk, apply the profile's rules, and record the request:
    pending for approvers, approved by the policy, or denied by it.

    With `break_glass` (profiles that allow it, after a fresh MFA step-up) the
    rules and approvers are skipped: access at once, capped, alerted loudly,
    and a review opened that an approver must close."""
    policy = profile.policy
    if not profile.enabled:
        raise InvalidRequest(f"profile {profile.slug} is disabled")
    if not can_request(requester, profile):
        raise NotAllowed(f"you may not request {profile.slug}")
    emergency = policy.policy.break_glass
    if break_glass and emergency is None:
        raise NotAllowed(f"{profile.slug} has no break-glass access")

    duration = duration if duration is not None else policy.duration_default
    reason, ticket = (reason or "").strip(), (ticket or "").strip()
    longest = emergency.max_duration if break_glass else policy.max_duration
    errors: dict[str, str] = {}
    if duration <= timedelta(0):
        errors["duration"] = "must be positive"
    elif duration > longest:
        errors["duration"] = f"at most {format_duration(longest)} for {profile.slug}"
    if break_glass and not reason:
        errors["reason"] = "say what the emergency is"
    elif break_glass and start_at is not None:
        errors["start_at"] = "break-glass access starts now"
    if policy.reason_required and not reason:
        errors["reason"] = "a reason is required"
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = f"at most {MAX_REASON_LENGTH} characters"
    if policy.ticket_required and not ticket:
        errors["ticket"] = "a ticket reference is required"
    elif len(ticket) > 100:
        errors["ticket"] = "at most 100 characters"
    elif ticket and policy.ticket_pattern and not re.fullmatch(policy.ticket_pattern, ticket):
        errors["ticket"] = f"must match {policy.ticket_pattern}"
    provider = get_provider(policy.provider.kind)
    if "duration" not in errors and duration < provider.min_duration:
        errors["duration"] = (
            f"at least {format_duration(provider.min_duration)} for {policy.provider.kind}"
        )
    if provider.needs_public_key:
        try:
            ssh_public_key = normalize_public_key(ssh_public_key)
        except ValueError as exc:
            errors["ssh_public_key"] = str(exc)
    elif (ssh_public_key or "").strip():
        errors["ssh_public_key"] = f"{profile.slug} takes no SSH key"
    now = timezone.now()
    if start_at is not None and not now < start_at <= now + MAX_START_AHEAD:
        errors["start_at"] = f"must be in the future, at most {MAX_START_AHEAD.days} days ahead"
    if errors:
        raise InvalidRequest("the request is not valid", fields=errors)
    if break_glass and recent_step_up(requester) is None:
        raise StepUpRequired("break-glass needs a fresh MFA verification")

    with transaction.atomic():
        # Lock the requester's row so two submissions of the same profile queue up.
        get_user_model().objects.select_for_update().get(pk=requester.pk)
        if AccessRequest.objects.filter(
            requester=requester, profile=profile, status=Status.PENDING
        ).exists():
            raise Conflict(f"you already have a pending request for {profile.slug}")
        spec = risk.risk_spec()
        assessment = risk.assess(
            risk.facts_for(user=requester, profile=profile, duration=duration, spec=spec,
                           source=info.source, ip=info.ip, user_agent=info.user_agent, now=now),
            spec,
        )  # fmt: skip
        outcome = (
            rules.Outcome(action=rules.BREAK_GLASS, approvals_required=0)
            if break_glass
            else rules.evaluate(
                policy,
                requester=requester,
                assessment=assessment,
                ticket=ticket,
                local_time=now.astimezone(risk.user_zone(requester)),
            )
        )
        access_request = AccessRequest.objects.create(
            profile=profile,
            requester=requester,
            duration=duration,
            reason=reason,
            ticket=ticket,
            ssh_public_key=(ssh_public_key or "").strip(),
            source=info.source,
            created_at=now,
            pending_until=now + policy.pending_ttl,
            start_at=start_at,
            approvals_required=outcome.approvals_required,
            risk_score=min(assessment.score, 32767),
            risk_factors=assessment.as_json(),
            policy_trace=outcome.trace,
            break_glass=break_glass,
        )
        if outcome.action == rules.ASK:
            _check_approver_pool(access_request)
        trail.record(
            action="request.submitted",
            info=info,
            actor=requester,
            target=access_request,
            to_status=Status.PENDING,
            reason=reason,
            data={
                "profile": profile.slug,
                "duration": format_duration(duration),
                "ticket": ticket,
                "risk": assessment.score,
                "risk_factors": [f.why for f in assessment.factors],
                **({"start_at": start_at.isoformat()} if start_at else {}),
                **({"break_glass": True} if break_glass else {}),
            },
        )
        if outcome.action == rules.BREAK_GLASS:
            _break_glass(access_request, emergency, info)
        elif outcome.action == rules.DENY:
            _close_request(
                access_request, Status.DENIED, None, outcome.reason, info, "request.denied",
                data={"by_policy": "deny_above", "trace": outcome.trace},
            )  # fmt: skip
        elif outcome.action == rules.AUTO_APPROVE:
            _approve(access_request, None, info, {"by_policy": outcome.reason})
    return access_request


def _break_glass(access_request: AccessRequest, emergency, info: trail.RequestInfo) -> None:
    requester = access_request.requester
    review = BreakGlassReview.objects.create(
        request=access_request, due_at=access_request.created_at + emergency.review_within
    )
    trail.record(
        action="request.break_glass",
        info=info,
        actor=requester,
        target=access_request,
        reason=access_request.reason,
        data={"review_due": review.due_at.isoformat(), "profile": access_request.profile.slug},
    )
    _approve(access_request, requester, info, {"by_policy": "break_glass"})
    logger.error(
        "ALERT break-glass: %s took %s for %s: %s",
        requester.get_username(),
        access_request.profile.slug,
        format_duration(access_request.duration),
        access_request.reason,
    )


def break_glass_review_close(
    *, request_id: UUID | str, reviewer, notes: str, info: trail.RequestInfo
) -> BreakGlassReview:
    """An approver of the profile (never the one who broke the glass) closes the review."""
    notes = (notes or "").strip()
    if not notes:
        raise InvalidRequest("write what you found", fields={"notes": "notes are required"})
    with transaction.atomic():
        access_request = _lock_request(request_id)
        review = BreakGlassReview.objects.select_for_update().filter(request=access_request).first()
        if review is None:
            raise NotFound("no such review")
        if reviewer.pk == access_request.requester_id:
            raise NotAllowed("someone else must review your break-glass access")
        if not can_approve(reviewer, access_request.profile):
            raise NotAllowed(f"only approvers of {access_request.profile.slug} review it")
        if review.closed_at is not None:
            raise Conflict(f"closed already by {review.closed_by}")
        review.closed_at, review.closed_by, review.notes = timezone.now(), reviewer, notes
        review.save(update_fields=["closed_at", "closed_by", "notes"])
        trail.record(
            action="review.closed",
            info=info,
            actor=reviewer,
            target=access_request,
            reason=notes[:MAX_REASON_LENGTH],
            data={"overdue": review.closed_at > review.due_at},
        )
    return review


def _check_approver_pool(access_request: AccessRequest) -> None:
    """Fail closed: a request nobody could ever approve is refused now."""
    for index, (_, needed) in enumerate(step_needs(access_request)):
        if eligible_approvers(access_request, step=index).count() < needed:
            raise InvalidRequest(
                f"{access_request.profile.slug} needs {needed} approver(s) other than you "
                f"(step {index + 1}) and there are not enough; ask an admin to fix the catalog"
            )


def _approve(access_request: AccessRequest, actor, info: trail.RequestInfo, data: dict) -> None:
    """Mark approved and schedule the grant (or the extension)."""
    access_request.status = Status.APPROVED
    access_request.decided_at = timezone.now()
    access_request.save(update_fields=["status", "decided_at"])
    trail.record(
        action="request.approved",
        info=info,
        actor=actor,
        target=access_request,
        from_status=Status.PENDING,
        to_status=Status.APPROVED,
        data=data,
    )
    if access_request.extends_id:
        _schedule_extension(access_request)
        return
    grant = Grant.objects.create(
        request=access_request, duration=access_request.duration, created_at=timezone.now()
    )
    starts = access_request.start_at
    trail.record(
        action="grant.scheduled",
        info=info,
        actor=actor,
        target=grant,
        to_status=GrantStatus.SCHEDULED,
        data={"request": str(access_request.id), "starts": starts.isoformat() if starts else ""},
    )
    transaction.on_commit(lambda: _enqueue("broker.tasks.activate_grant", grant.id, eta=starts))


def access_request_approve(
    *, request_id: UUID | str, approver, comment: str = "", info: trail.RequestInfo
) -> AccessRequest:
    """Record one approval; when enough agree, approve and schedule the grant."""
    with transaction.atomic():
        access_request = _lock_request(request_id)
        step_up = _check_decider(access_request, approver)
        problem = standing_problem(access_request.requester, access_request.profile)
        if problem:
            raise Conflict(f"this request can no longer be approved: {problem}")
        _record_decision(
            access_request, approver, Approval.Decision.APPROVE, comment, step_up, info
        )
        if current_step(access_request) is not None:
            return access_request  # more approvals needed (in this step or the next)
        approvers = list(
            access_request.decisions.filter(decision=Approval.Decision.APPROVE).values_list(
                "approver__username", flat=True
            )
        )
        _approve(
            access_request,
            approver,
            info,
            {"approvers": approvers, "approvals_required": access_request.approvals_required},
        )
    return access_request


def access_request_deny(
    *, request_id: UUID | str, approver, reason: str, info: trail.RequestInfo
) -> AccessRequest:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("say why you deny it", fields={"reason": "a reason is required"})
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidRequest(
            "the reason is too long", fields={"reason": f"at most {MAX_REASON_LENGTH} characters"}
        )
    with transaction.atomic():
        access_request = _lock_request(request_id)
        step_up = _check_decider(access_request, approver)
        _record_decision(access_request, approver, Approval.Decision.DENY, reason, step_up, info)
        _close_request(access_request, Status.DENIED, approver, reason, info, "request.denied")
    return access_request


def access_request_cancel(
    *, request_id: UUID | str, actor, reason: str = "", info: trail.RequestInfo
) -> AccessRequest:
    with transaction.atomic():
        access_request = _lock_request(request_id)
        if access_request.requester_id != actor.pk:
            raise NotAllowed("only the requester can cancel a request")
        if access_request.status != Status.PENDING:
            raise Conflict(f"the request is already {access_request.status}")
        _close_request(
            access_request, Status.CANCELLED, actor, reason.strip(), info, "request.cancelled"
        )
    return access_request


def access_requests_expire_pending(*, limit: int = 500) -> int:
    """Expire pending requests past their TTL. Safe with several sweepers."""
    expired = 0
    with transaction.atomic():
        overdue = (
            AccessRequest.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, pending_until__lte=timezone.now())
            .order_by("pending_until")[:limit]
        )
        for access_request in overdue:
            _close_request(
                access_request,
                Status.EXPIRED,
                None,
                "no decision before the pending TTL",
                trail.SYSTEM,
                "request.expired",
            )
            expired += 1
    return expired


def _lock_request(request_id: UUID | str) -> AccessRequest:
    return _lock(
        AccessRequest.objects.select_related("profile", "requester"), request_id, "request"
    )


def _lock_grant(grant_id: UUID | str) -> Grant:
    grants = Grant.objects.select_related("request__profile", "request__requester")
    return _lock(grants, grant_id, "grant")


def _lock(queryset, object_id: UUID | str, what: str):
    """Lock one row (waiting for other holders); NotFound for unknown or malformed ids."""
    found = queryset.select_for_update(of=("self",)).filter(pk=_as_uuid(object_id, what)).first()
    if found is None:
        raise NotFound(f"no such {what}")
    return found


def _as_uuid(value: UUID | str, what: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound(f"no such {what}") from None


def _check_decider(access_request: AccessRequest, approver):
    """Rights first, then state, then MFA: returns the approver's recent MFA verification."""
    profile = access_request.profile
    if approver.pk == access_request.requester_id:
        raise NotAllowed("you cannot decide your own request")
    if access_request.status != Status.PENDING:
        if not can_approve(approver, profile):
            raise NotAllowed(f"you are not an approver for {profile.slug}")
        raise Conflict(f"the request is already {access_request.status}")
    if not can_decide(approver, access_request):
        if can_approve(approver, profile):
            step = (current_step(access_request) or 0) + 1
            raise NotAllowed(f"this request waits for step {step} approvers; you are not one")
        raise NotAllowed(f"you are not an approver for {profile.slug}")
    if access_request.pending_until <= timezone.now():
        raise Conflict("the request has expired")
    if access_request.decisions.filter(approver=approver).exists():
        raise Conflict("you have already decided this request")
    step_up = recent_step_up_record(approver)
    if step_up is None:
        raise StepUpRequired("verify your MFA code first")
    return step_up


def _record_decision(access_request, approver, decision, comment, step_up, info) -> None:
    step = current_step(access_request)
    Approval.objects.create(
        step=step or 0,
        request=access_request,
        approver=approver,
        decision=decision,
        comment=comment,
        source=info.source,
        mfa_verified_at=step_up.verified_at,
        mfa_method=step_up.method,
        created_at=timezone.now(),
    )
    trail.record(
        action=f"request.decision.{decision}",
        info=info,
        actor=approver,
        target=access_request,
        reason=comment,
        data={"mfa_verified_at": step_up.verified_at.isoformat(), "mfa_method": step_up.method},
    )


def _close_request(access_request, status, actor, reason, info, action, data=None) -> None:
    old = access_request.status
    access_request.status = status
    access_request.decided_at = timezone.now()
    access_request.decision_reason = reason
    access_request.save(update_fields=["status", "decided_at", "decision_reason"])
    trail.record(
        action=action,
        info=info,
        actor=actor,
        target=access_request,
        from_status=old,
        to_status=status,
        reason=reason,
        data=data,
    )


# --- grants -----------------------------------------------------------------


def grant_activate(*, grant_id: UUID | str) -> Grant | None:
    """Mint the credential for a scheduled grant.

    The row stays locked across the provider call, so a second task for the
    same grant skips it, and a crash before the commit leaves it `scheduled`
    for a retry. If the credential was minted but recording it fails (the
    audit write or the commit), it is revoked at once rather than left live
    with no grant to explain it. Raises TryAgainLater after recording a
    transient failure.
    """
    provider, issued, retry = None, None, None
    try:
        with transaction.atomic():
            grant = _claim_grant(grant_id, [GrantStatus.SCHEDULED])
            if grant is None:
                return None
            starts = grant.request.start_at
            if starts is not None and timezone.now() < starts:
                return None  # a change window not open yet: its ETA task or the sweeper
            problem = standing_problem(grant.request.requester, grant.profile)
            if problem:
                # Offboarded, moved team or profile removed since the approval: mint nothing.
                _end_grant(grant, GrantStatus.FAILED, problem, "grant.failed")
                return grant
            now = timezone.now()
            grant.expires_at = now + grant.duration
            grant.activation_attempts += 1
            grant.last_attempt_at = now
            provider = get_provider(grant.profile.provider_kind)
            try:
                issued = _call_provider(provider.grant, _context(grant))
            except ProviderError as exc:
                retry = _record_activation_failure(grant, exc)
            else:
                _record_activation(grant, provider, issued, now)
    except Exception:
        if issued is not None:
            with suppress(ProviderError):
                _call_provider(provider.revoke, issued.handle)
        raise
    if retry is not None:
        raise TryAgainLater(str(retry))
    return grant


def _record_activation_failure(grant: Grant, exc: ProviderError) -> ProviderError | None:
    """Record a failed attempt; return the error if a retry may help, else fail the grant."""
    if exc.permanent or grant.activation_attempts >= ACTIVATION_MAX_ATTEMPTS:
        _end_grant(grant, GrantStatus.FAILED, str(exc), "grant.failed")
        return None
    grant.last_error = str(exc)
    grant.save(update_fields=["activation_attempts", "last_attempt_at", "last_error"])
    trail.record(
        action="grant.activation_retry",
        info=trail.SYSTEM,
        target=grant,
        reason=str(exc),
        data={"attempt": grant.activation_attempts},
    )
    return exc


def _record_activation(grant: Grant, provider, issued: Issued, now) -> None:
    if issued.expires_at > grant.expires_at:
        # Principle 1: never hand out a credential that outlives its grant.
        grant.handle = issued.handle
        try:
            _call_provider(provider.revoke, issued.handle)
            status = GrantStatus.FAILED
        except ProviderError:
            status = GrantStatus.REVOKE_FAILED
        message = "the provider issued a credential that outlives the grant"
        _end_grant(grant, status, message, "grant.failed")
        return
    grant.status = GrantStatus.ACTIVE
    grant.activated_at = now
    # A source may end the credential a little early (vault.database keeps a pad
    # before its VALID UNTIL): the grant ends with it, not after it.
    grant.expires_at = min(grant.expires_at, issued.expires_at)
    grant.handle = issued.handle
    grant.secret = encrypt_secret(json.dumps(issued.credential))
    grant.last_error = ""
    grant.save()
    trail.record(
        action="grant.activated",
        info=trail.SYSTEM,
        target=grant,
        from_status=GrantStatus.SCHEDULED,
        to_status=GrantStatus.ACTIVE,
        data={
            "expires_at": grant.expires_at.isoformat(),
            "source_expires_at": issued.expires_at.isoformat(),
            "handle": issued.handle,
            **issued.details,
        },
    )
    expires_at = grant.expires_at
    transaction.on_commit(lambda: _enqueue("broker.tasks.expire_grant", grant.id, eta=expires_at))


def grant_revoke(
    *, grant_id: UUID | str, actor, reason: str = "", info: trail.RequestInfo
) -> Grant:
    """Revoke early: by the grant's owner, an approver of its profile, or an admin."""
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if not (
            actor.pk == grant.request.requester_id
            or actor.is_superuser
            or can_approve(actor, grant.profile)
        ):
            raise NotAllowed("only the owner, an approver of this profile or an admin can revoke")
        reason = (reason or "").strip()[:MAX_REASON_LENGTH] or f"revoked by {actor.get_username()}"
        if grant.status not in (GrantStatus.SCHEDULED, GrantStatus.ACTIVE):
            raise Conflict(f"the grant is already {grant.status}")
        _begin_revocation(grant, actor=actor, reason=reason, info=info)
    return grant


def _begin_revocation(grant: Grant, *, actor, reason: str, info: trail.RequestInfo) -> None:
    """End a locked scheduled grant here, or hand an active one to the worker
    that revokes it at its source."""
    if grant.status == GrantStatus.SCHEDULED:
        # Nothing was minted yet: end it here and the activation task will skip it.
        _end_grant(grant, GrantStatus.REVOKED, reason, "grant.revoked", actor=actor, info=info)
        return
    grant.status = GrantStatus.REVOKING
    grant.end_reason = reason[:200]
    grant.save(update_fields=["status", "end_reason"])
    trail.record(
        action="grant.revoke_requested",
        info=info,
        actor=actor,
        target=grant,
        from_status=GrantStatus.ACTIVE,
        to_status=GrantStatus.REVOKING,
        reason=reason,
    )
    transaction.on_commit(lambda: _enqueue("broker.tasks.revoke_grant", grant.id))


@dataclass(frozen=True)
class StandingChange:
    """What `access_enforce_standing` did to one request or grant: withdrawn,
    revoked, or kept (the catalog says `on_eligibility_lost: keep`)."""

    action: str
    line: str


def access_enforce_standing(
    *, user_ids: list | None = None, profile_ids: list | None = None, grants_only: bool = False
) -> list[StandingChange]:
    """Withdraw the pending requests and end the live grants of requesters who
    lost their standing (left a requesting group, account disabled, profile
    removed), whatever made the change: sync_catalog, the admin, OIDC, or a
    change behind Airlock's back that the periodic watch finds. Live grants
    follow the catalog's one rule, `on_eligibility_lost`. Limited to some users
    or profiles when given. Each item changes in a transaction of its own."""
    keep = getattr(CatalogState.objects.first(), "on_eligibility_lost", "revoke") == "keep"

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
            # only fail at its activation, so it ends now either way.
            kept = keep and grant.status == GrantStatus.ACTIVE
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
            access_request, Status.CANCELLED, None, problem, trail.SYSTEM, "request.withdrawn"
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


def grant_retry_revocation(*, grant_id: UUID | str, actor, info: trail.RequestInfo) -> Grant:
    """An admin asks to try a failed revocation again (after fixing the cause)."""
    if not actor.is_superuser:
        raise NotAllowed("only an admin can retry a revocation")
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if grant.status != GrantStatus.REVOKE_FAILED:
            raise Conflict(f"the grant is {grant.status}, not revoke_failed")
        grant.status = GrantStatus.REVOKING
        grant.revoke_attempts = 0
        grant.ended_at = None
        grant.save(update_fields=["status", "revoke_attempts", "ended_at"])
        trail.record(
            action="grant.revoke_retry_requested",
            info=info,
            actor=actor,
            target=grant,
            from_status=GrantStatus.REVOKE_FAILED,
            to_status=GrantStatus.REVOKING,
        )
        transaction.on_commit(lambda: _enqueue("broker.tasks.revoke_grant", grant.id))
    return grant


def grant_expire(*, grant_id: UUID | str) -> Grant | None:
    """Revoke an active grant whose time is up (the ETA task and the sweeper)."""
    with transaction.atomic():
        grant = _claim_grant(grant_id, [GrantStatus.ACTIVE])
        if grant is None:
            return None  # someone else has it, or it has ended
        early = (grant.expires_at - timezone.now()).total_seconds()
        if early > 0:
            # An ETA task can fire a little early (or be redelivered): come back at
            # the expiry rather than leave it to the next sweep.
            raise TryAgainLater("not due yet", retry_in=early)
        grant.end_reason = "expired"
        retry = _revoke_at_source(grant)
    if retry:
        raise TryAgainLater(retry)
    return grant


def grant_revoke_execute(*, grant_id: UUID | str) -> Grant | None:
    """Carry out a requested revocation (or retry one that failed transiently)."""
    with transaction.atomic():
        # revoke_failed too: the sweeper keeps trying while the credential may be live.
        grant = _claim_grant(grant_id, [GrantStatus.REVOKING, GrantStatus.REVOKE_FAILED])
        if grant is None:
            return None
        retry = _revoke_at_source(grant)
    if retry:
        raise TryAgainLater(retry)
    return grant


def grant_reveal(*, grant_id: UUID | str, user, info: trail.RequestInfo) -> dict:
    """Show the credential once to its owner after MFA, then wipe it."""
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if grant.request.requester_id != user.pk:
            # Same answer as a missing grant: do not confirm that it exists.
            raise NotFound("no such grant")
        if grant.status != GrantStatus.ACTIVE:
            raise Conflict(f"the grant is {grant.status}")
        problem = standing_problem(grant.request.requester, grant.profile)
        if problem:
            raise NotAllowed(f"the credential can no longer be shown: {problem}")
        if grant.secret is None:
            shown = grant.revealed_at.isoformat() if grant.revealed_at else "before"
            raise Conflict(f"the credential was already shown ({shown})")
        if recent_step_up(user) is None:
            raise StepUpRequired("verify your MFA code first")
        credential = json.loads(decrypt_secret(grant.secret))
        grant.secret = None
        grant.revealed_at = timezone.now()
        grant.save(update_fields=["secret", "revealed_at"])
        trail.record(action="grant.credential_revealed", info=info, actor=user, target=grant)
    return credential


# --- extensions ---------------------------------------------------------------


def grant_extend_request(
    *, grant_id: UUID | str, actor, duration: timedelta, reason: str, info: trail.RequestInfo
) -> AccessRequest:
    """Ask for more time on a live grant, within the profile's extension rules.

    The extension is an access request of its own (`extends` the grant), so it
    is decided like any other: on the web, in Slack or through the API, unless
    the profile approves extensions by policy.
    """
    reason = (reason or "").strip()
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if grant.request.requester_id != actor.pk:
            raise NotFound("no such grant")
        extension_rules = grant.profile.policy.extension
        if extension_rules is None:
            raise NotAllowed(f"{grant.profile.slug} does not allow extensions")
        problem = standing_problem(grant.request.requester, grant.profile)
        if problem:
            raise NotAllowed(f"this grant cannot be extended: {problem}")
        if grant.status != GrantStatus.ACTIVE:
            raise Conflict(f"the grant is {grant.status}")
        longest, cap = _extension_cap(grant, extension_rules)
        now = timezone.now()
        errors: dict[str, str] = {}
        if duration <= timedelta(0):
            errors["duration"] = "must be positive"
        elif grant.duration + duration > longest:
            room = max(longest - grant.duration, timedelta(0))
            errors["duration"] = (
                f"at most {format_duration(room)} more ({format_duration(longest)} in all {cap})"
            )
        if grant.profile.policy.reason_required and not reason:
            errors["reason"] = "a reason is required"
        elif len(reason) > MAX_REASON_LENGTH:
            errors["reason"] = f"at most {MAX_REASON_LENGTH} characters"
        if errors:
            raise InvalidRequest("the extension is not valid", fields=errors)
        asked = grant.extension_requests.filter(status__in=[Status.PENDING, Status.APPROVED])
        if asked.filter(status=Status.PENDING).exists() or asked.count() > grant.extensions:
            raise Conflict("an extension of this grant is already under way")
        if grant.extensions >= extension_rules.max_count:
            raise Conflict(f"this grant was already extended {grant.extensions} time(s)")
        opens_at = (
            grant.activated_at
            + (grant.expires_at - grant.activated_at) * extension_rules.after_share
        )
        if now < opens_at:
            raise Conflict(f"an extension can be asked from {opens_at:%H:%M:%S} UTC")
        extension = AccessRequest.objects.create(
            profile=grant.profile,
            requester=actor,
            duration=duration,
            reason=reason,
            ticket=grant.request.ticket,
            source=info.source,
            created_at=now,
            pending_until=min(now + grant.profile.policy.pending_ttl, grant.expires_at),
            extends=grant,
        )
        trail.record(
            action="request.submitted",
            info=info,
            actor=actor,
            target=extension,
            to_status=Status.PENDING,
            reason=reason,
            data={
                "profile": grant.profile.slug,
                "duration": format_duration(duration),
                "extends": str(grant.pk),
            },
        )
        # Break-glass skipped every approver once; more time always needs a human.
        if extension_rules.approval == "auto" and not grant.request.break_glass:
            by_policy = f"{grant.profile.slug}: extension.approval auto"
            _approve(extension, None, info, {"by_policy": by_policy})
    return extension


def _extension_cap(grant: Grant, extension_rules) -> tuple[timedelta, str]:
    """How long the grant may last in all, extensions included, and why."""
    if not grant.request.break_glass:
        return extension_rules.max_total, f"for {grant.profile.slug}"
    emergency = grant.profile.policy.policy.break_glass
    if emergency is None:
        raise NotAllowed(f"{grant.profile.slug} no longer allows break-glass access")
    longest = min(extension_rules.max_total, emergency.max_duration)
    return longest, f"for break-glass access to {grant.profile.slug}"


def _schedule_extension(extension: AccessRequest) -> None:
    trail.record(
        action="grant.extension_scheduled",
        info=trail.SYSTEM,
        target=extension.extends,
        data={"request": str(extension.pk), "duration": format_duration(extension.duration)},
    )
    transaction.on_commit(lambda: _enqueue("broker.tasks.extend_grant", extension.pk))


def grant_extend_execute(*, request_id: UUID | str) -> Grant | None:
    """Re-issue an approved extension's credential with the later expiry, then revoke
    the old one. Idempotent: an extension is applied once."""
    with transaction.atomic():
        extension = _lock_request(request_id)
        if extension.extends_id is None or extension.status != Status.APPROVED:
            return None
        grant = _claim_grant(extension.extends_id, [GrantStatus.ACTIVE])
        if grant is None:
            if Grant.objects.filter(pk=extension.extends_id, status=GrantStatus.ACTIVE).exists():
                raise TryAgainLater("the grant is busy")  # someone holds its lock
            return None  # it ended meanwhile: nothing to extend
        settled = AuditEvent.objects.filter(
            action__in=EXTENSION_SETTLED, target_id=str(grant.pk), data__request=str(extension.pk)
        )
        if settled.exists():
            return None
        problem = standing_problem(grant.request.requester, grant.profile)
        if problem:
            _record_extension_failure(grant, extension, problem)
            return grant
        provider = get_provider(grant.profile.provider_kind)
        new_expiry = grant.expires_at + extension.duration
        context = replace(_context(grant), expires_at=new_expiry, serial=grant.extensions + 1)
        try:
            issued = _call_provider(provider.grant, context)
        except ProviderError as exc:
            if not exc.permanent:
                raise TryAgainLater(str(exc)) from exc
            _record_extension_failure(grant, extension, str(exc))
            return grant
        if issued.expires_at > new_expiry:
            # Principle 1, as at activation: never a credential that outlives its grant.
            outlives = "the provider issued a credential that outlives the grant"
            try:
                _call_provider(provider.revoke, issued.handle)
            except ProviderError as exc:
                logger.error("ALERT %s and could not be revoked: %s", outlives, exc)
            _record_extension_failure(grant, extension, outlives)
            return grant
        new_expiry = issued.expires_at
        old_handle = grant.handle
        old_expiry = grant.expires_at
        grant.handle = issued.handle
        grant.secret = encrypt_secret(json.dumps(issued.credential))
        grant.revealed_at = None
        grant.expires_at = new_expiry
        grant.duration += extension.duration
        grant.extensions += 1
        grant.save()
        trail.record(
            action="grant.extended",
            info=trail.SYSTEM,
            target=grant,
            data={
                "request": str(extension.pk),
                "old_expires_at": old_expiry.isoformat(),
                "expires_at": new_expiry.isoformat(),
                "handle": issued.handle,
            },
        )
        transaction.on_commit(
            lambda: _enqueue("broker.tasks.expire_grant", grant.id, eta=new_expiry)
        )
    # The old credential goes only once the new one is recorded; if this fails it
    # still dies at its own expiry at the source, and the reconciler reports it.
    try:
        _call_provider(provider.revoke, old_handle)
    except ProviderError as exc:
        logger.error("ALERT old credential of extended grant %s not revoked: %s", grant.id, exc)
    return grant


def _record_extension_failure(grant: Grant, extension: AccessRequest, reason: str) -> None:
    trail.record(
        action="grant.extension_failed",
        info=trail.SYSTEM,
        target=grant,
        reason=reason,
        data={"request": str(extension.pk)},
    )


def sweep() -> dict[str, int]:
    """The third line of defence; runs from Celery beat every few seconds.

    Expires pending requests, revokes overdue grants whose ETA task was lost,
    retries stalled revocations and activations. Each grant is claimed with
    skip_locked, so several sweepers and the ETA tasks never collide.
    """
    now = timezone.now()
    counts = {"requests_expired": access_requests_expire_pending()}

    overdue = Grant.objects.filter(status=GrantStatus.ACTIVE, expires_at__lte=now)
    counts["grants_expired"] = 0
    for pk in _ids(overdue):
        # A transient failure is recorded; the next sweep tries again.
        with suppress(TryAgainLater):
            counts["grants_expired"] += grant_expire(grant_id=pk) is not None
    stalled_revocations = Grant.objects.filter(
        status__in=[GrantStatus.REVOKING, GrantStatus.REVOKE_FAILED]
    ).exclude(last_attempt_at__gt=now - settings.AIRLOCK_REVOKE_RETRY_AFTER)
    counts["revocations_retried"] = 0
    for pk in _ids(stalled_revocations):
        # A transient failure is recorded; the next sweep tries again.
        with suppress(TryAgainLater):
            counts["revocations_retried"] += grant_revoke_execute(grant_id=pk) is not None
    stalled_activations = (
        Grant.objects.filter(status=GrantStatus.SCHEDULED, created_at__lte=now - SCHEDULED_GRACE)
        .filter(Q(request__start_at__isnull=True) | Q(request__start_at__lte=now))
        .exclude(last_attempt_at__gt=now - SCHEDULED_GRACE)
    )
    counts["activations_retried"] = 0
    for pk in _ids(stalled_activations):
        with suppress(TryAgainLater):
            counts["activations_retried"] += grant_activate(grant_id=pk) is not None
    # Approved extensions whose task was lost (applying one twice is a no-op).
    counts["extensions_retried"] = 0
    for pk in _unapplied_extensions(now):
        with suppress(TryAgainLater):
            counts["extensions_retried"] += grant_extend_execute(request_id=pk) is not None
    return counts


# --- reminders and reviews ------------------------------------------------------


def remind_pending(now=None) -> dict[str, int]:
    """Remind approvers of undecided requests with backoff (after `first_after`, then
    each time after twice as long), and escalate once to the fallback group."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0}
    pending = AccessRequest.objects.filter(status=Status.PENDING, pending_until__gt=now)
    for access_request in pending.select_related("profile").order_by("created_at")[:500]:
        reminders = access_request.profile.policy.policy.reminders
        if reminders is None:
            continue
        waited = now - access_request.created_at
        sent = access_request.reminders_sent
        if waited >= reminders.first_after * (2**sent) and _claim_reminder(access_request, sent):
            with transaction.atomic():
                trail.record(
                    action="request.reminder",
                    info=trail.SYSTEM,
                    target=access_request,
                    data={"reminder": sent + 1, "waited": format_duration(waited)},
                )
            counts["reminded"] += 1
        late = reminders.escalate_after is not None and waited >= reminders.escalate_after
        if late and access_request.escalated_at is None:
            with transaction.atomic():
                if AccessRequest.objects.filter(pk=access_request.pk, escalated_at=None).update(
                    escalated_at=now
                ):
                    trail.record(
                        action="request.escalated",
                        info=trail.SYSTEM,
                        target=access_request,
                        data=reminders.escalate_to.model_dump(),
                    )
                    counts["escalated"] += 1
    return counts


def _claim_reminder(access_request: AccessRequest, sent: int) -> bool:
    # Conditional on the count seen, so two watchers never send the same reminder.
    return bool(
        AccessRequest.objects.filter(pk=access_request.pk, reminders_sent=sent).update(
            reminders_sent=sent + 1
        )
    )


REVIEW_REMINDER_EVERY = timedelta(hours=24)


def remind_reviews(now=None) -> int:
    """Overdue break-glass reviews: say so (again, once a day) until one is closed."""
    now = now or timezone.now()
    overdue = BreakGlassReview.objects.filter(closed_at=None, due_at__lte=now).filter(
        Q(last_reminded_at=None) | Q(last_reminded_at__lte=now - REVIEW_REMINDER_EVERY)
    )
    reminded = 0
    for review in overdue.select_related("request__profile")[:200]:
        with transaction.atomic():
            if BreakGlassReview.objects.filter(
                pk=review.pk, last_reminded_at=review.last_reminded_at
            ).update(last_reminded_at=now):
                trail.record(
                    action="review.overdue",
                    info=trail.SYSTEM,
                    target=review.request,
                    data={"due_at": review.due_at.isoformat()},
                )
                reminded += 1
    return reminded


def _unapplied_extensions(now) -> list:
    """Approved extension requests of active grants that no settling event names."""
    candidates = AccessRequest.objects.filter(
        status=Status.APPROVED,
        extends__status=GrantStatus.ACTIVE,
        decided_at__lte=now - SCHEDULED_GRACE,
    ).values_list("pk", flat=True)[:500]
    settled = set(
        AuditEvent.objects.filter(
            action__in=EXTENSION_SETTLED, data__request__in=[str(pk) for pk in candidates]
        ).values_list("data__request", flat=True)
    )
    return [pk for pk in candidates if str(pk) not in settled]


def _ids(queryset, limit: int = 500) -> list:
    return list(queryset.order_by("created_at").values_list("pk", flat=True)[:limit])


def _claim_grant(grant_id, statuses: list[str]) -> Grant | None:
    """Lock the grant if it is in one of `statuses` and nobody else holds it."""
    return (
        Grant.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("request__profile", "request__requester")
        .filter(pk=_as_uuid(grant_id, "grant"), status__in=statuses)
        .first()
    )


def _revoke_at_source(grant: Grant) -> str | None:
    """Revoke a locked grant at its provider and record the outcome.

    Returns the error when a retry may help; the caller raises it after commit
    so the recorded attempt is not rolled back.
    """
    grant.revoke_attempts += 1
    grant.last_attempt_at = timezone.now()
    try:
        details = _call_provider(get_provider(grant.profile.provider_kind).revoke, grant.handle)
    except ProviderError as exc:
        if grant.status == GrantStatus.REVOKE_FAILED:
            # Already alerted and audited: note the attempt and keep trying on later sweeps.
            grant.last_error = str(exc)
            grant.save(update_fields=["revoke_attempts", "last_attempt_at", "last_error"])
            return None
        if exc.permanent or grant.revoke_attempts >= settings.AIRLOCK_REVOKE_MAX_ATTEMPTS:
            _end_grant(grant, GrantStatus.REVOKE_FAILED, str(exc), "grant.revoke_failed")
            logger.error("ALERT grant %s could not be revoked: %s", grant.id, exc)
            return None
        old = grant.status
        grant.status = GrantStatus.REVOKING
        grant.last_error = str(exc)
        grant.save()
        trail.record(
            action="grant.revoke_retry",
            info=trail.SYSTEM,
            target=grant,
            from_status=old,
            to_status=GrantStatus.REVOKING,
            reason=str(exc),
            data={"attempt": grant.revoke_attempts},
        )
        return str(exc)
    action = "grant.expired" if grant.end_reason == "expired" else "grant.revoked"
    _end_grant(grant, GrantStatus.REVOKED, grant.end_reason, action, data=details)
    return None


def _call_provider(method, argument):
    """Call a provider; an unexpected exception counts as a transient ProviderError.

    Its message is not kept (it could carry anything); the traceback goes to the log.
    """
    try:
        return method(argument)
    except ProviderError:
        raise
    except Exception as exc:
        logger.exception("provider call %s failed unexpectedly", method.__qualname__)
        raise ProviderError(f"unexpected {type(exc).__name__} in the provider") from None


def _end_grant(grant, status, reason, action, *, actor=None, info=trail.SYSTEM, data=None) -> None:
    old = grant.status
    grant.status = status
    grant.ended_at = timezone.now()
    if status == GrantStatus.REVOKE_FAILED:
        # Keep why it was ending (expired, relinquished...); the error is separate.
        grant.end_reason = grant.end_reason or reason[:200]
        grant.last_error = reason
    else:
        grant.end_reason = reason[:200]
        grant.last_error = "" if status == GrantStatus.REVOKED else reason
    grant.secret = None  # a credential that can no longer be used is never shown
    grant.save()
    trail.record(
        action=action,
        info=info,
        actor=actor,
        target=grant,
        from_status=old,
        to_status=status,
        reason=reason,
        data=data,
    )


def _context(grant: Grant) -> GrantContext:
    return GrantContext(
        grant_id=str(grant.id),
        request_id=str(grant.request_id),
        profile_id=grant.profile.slug,
        username=grant.request.requester.get_username(),
        config=grant.profile.policy.provider.config,
        expires_at=grant.expires_at,
        ssh_public_key=grant.request.ssh_public_key,
    )


def _enqueue(task_name: str, object_id, eta=None) -> None:
    # The sweeper catches anything lost here (broker down at commit time).
    try:
        current_app.send_task(task_name, args=[str(object_id)], eta=eta)
    except Exception:
        logger.exception("could not enqueue %s for %s; the sweeper will", task_name, object_id)
