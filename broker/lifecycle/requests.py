"""Access requests: submitted, decided by approvers (or by the policy, or broken
glass), cancelled, expired."""

import logging
import re
from datetime import datetime, timedelta
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.selectors import recent_step_up, recent_step_up_record, user_zone
from audit import trail
from audit.actions import Action
from broker import task_names
from broker.lifecycle.common import (
    MAX_REASON_LENGTH,
    GrantStatus,
    Status,
    _enqueue,
    _lock_request,
    checked_reason,
    transition,
)
from broker.lifecycle.errors import Conflict, InvalidRequest, NotAllowed, NotFound, StepUpRequired
from broker.models import AccessProfile, AccessRequest, Approval, BreakGlassReview, Grant
from broker.policy import risk, rules
from broker.policy.approvers import (
    can_approve,
    current_step,
    decision_refusal,
    eligible_approvers,
    step_needs,
)
from broker.policy.externals import external_of, external_rules
from broker.policy.locks import lock_refusal, locked_user_ids
from broker.policy.requesters import can_request, standing_problem, unavailable_because
from broker.riskmodel.features import network_of
from lib.durations import format_duration
from lib.providers import get_provider
from lib.sshkeys import PRIVATE_KEY_PASTED, is_private_key, normalize_public_key
from lib.text import has_control_characters

logger = logging.getLogger(__name__)


MAX_START_AHEAD = timedelta(days=7)
DECISION_ACTIONS = {
    Approval.Decision.APPROVE: Action.REQUEST_DECISION_APPROVE,
    Approval.Decision.DENY: Action.REQUEST_DECISION_DENY,
}


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
    definition = profile.definition
    if not profile.enabled:
        raise InvalidRequest(f"profile {profile.slug} is disabled")
    if not can_request(requester, profile):
        raise NotAllowed(f"you may not request {profile.slug}")
    if locked := lock_refusal(requester, profile):
        raise NotAllowed(f"not now: {locked}")
    if missing := unavailable_because(profile):
        # Refused before anyone approves: a grant must not fail after its approval.
        raise InvalidRequest(
            f"{profile.slug} is unavailable here: {missing}; tell an administrator"
        )
    emergency = definition.policy.break_glass
    if break_glass and emergency is None:
        raise NotAllowed(f"{profile.slug} has no break-glass access")
    external = external_of(requester)
    if external is not None:
        rules_for_externals = external_rules()
        if break_glass:
            raise NotAllowed("external accounts have no break-glass access")
        local = timezone.now().astimezone(user_zone(requester))
        business = risk.risk_spec().business_hours
        if rules_for_externals.business_hours_only and not risk.in_business_hours(local, business):
            raise NotAllowed("external accounts ask in business hours only")

    duration = duration if duration is not None else definition.duration_default
    reason, ticket = (reason or "").strip(), (ticket or "").strip()
    longest = emergency.max_duration if break_glass else definition.max_duration
    if external is not None:
        longest = min(longest, rules_for_externals.max_duration)
    errors: dict[str, str] = {}
    if duration <= timedelta(0):
        errors["duration"] = "must be positive"
    elif duration > longest:
        errors["duration"] = f"at most {format_duration(longest)} for {profile.slug}"
    if break_glass and not reason:
        errors["reason"] = "say what the emergency is"
    elif break_glass and start_at is not None:
        errors["start_at"] = "break-glass access starts now"
    if definition.reason_required and not reason:
        errors["reason"] = "a reason is required"
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = f"at most {MAX_REASON_LENGTH} characters"
    elif has_control_characters(reason):
        errors["reason"] = "plain text only: no control characters"
    if definition.ticket_required and not ticket:
        errors["ticket"] = "a ticket reference is required"
    elif len(ticket) > 100:
        errors["ticket"] = "at most 100 characters"
    elif has_control_characters(ticket):
        errors["ticket"] = "plain text only: no control characters"
    elif (
        ticket and definition.ticket_pattern and not re.fullmatch(definition.ticket_pattern, ticket)
    ):
        errors["ticket"] = f"must match {definition.ticket_pattern}"
    provider = get_provider(definition.provider.kind)
    if "duration" not in errors and duration < provider.min_duration:
        errors["duration"] = (
            f"at least {format_duration(provider.min_duration)} for {definition.provider.kind}"
        )
    if is_private_key(ssh_public_key):
        errors["ssh_public_key"] = PRIVATE_KEY_PASTED  # whatever the profile: it is exposed
    elif provider.needs_public_key:
        try:
            ssh_public_key = normalize_public_key(ssh_public_key)
        except ValueError as exc:
            errors["ssh_public_key"] = str(exc)
    elif (ssh_public_key or "").strip():
        errors["ssh_public_key"] = f"{profile.slug} takes no SSH key"
    now = timezone.now()
    if start_at is not None and external is not None:
        # Checked when asked (contract, business hours): their access starts now.
        errors["start_at"] = "external accounts ask for access that starts now"
    elif start_at is not None and not now < start_at <= now + MAX_START_AHEAD:
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
        facts = risk.facts_for(
            user=requester,
            profile=profile,
            duration=duration,
            spec=spec,
            source=info.source,
            ip=info.ip,
            user_agent=info.user_agent,
            ticket=ticket,
            now=now,
        )
        assessment = risk.assess(facts, spec)
        outcome = (
            rules.Outcome(action=rules.BREAK_GLASS, approvals_required=0)
            if break_glass
            else rules.evaluate(
                definition,
                requester=requester,
                assessment=assessment,
                ticket=ticket,
                local_time=facts.local_time,  # the requester's, as the risk read it
            )
        )
        if external is not None and outcome.action in (rules.ASK, rules.AUTO_APPROVE):
            # Never by policy alone, and their sponsor approves first.
            outcome.action = rules.ASK
            outcome.approvals_required += 1
            outcome.note("external", True, f"{external.company}: {external.sponsor} approves first")
        access_request = AccessRequest.objects.create(
            profile=profile,
            requester=requester,
            duration=duration,
            reason=reason,
            ticket=ticket,
            ssh_public_key=(ssh_public_key or "").strip(),
            source=info.source,
            created_at=now,
            pending_until=now + definition.pending_ttl,
            start_at=start_at,
            approvals_required=outcome.approvals_required,
            risk_score=min(assessment.score, 32767),
            risk_factors=assessment.as_json(),
            network=network_of(info.ip),
            unusual_score=facts.unusual.score if facts.unusual else None,
            risk_model_id=facts.unusual.version if facts.unusual else None,
            policy_trace=outcome.trace,
            break_glass=break_glass,
        )
        if outcome.action == rules.ASK:
            _check_approver_pool(access_request)
        trail.record(
            action=Action.REQUEST_SUBMITTED,
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
                **_model_said(access_request),
                **({"start_at": start_at.isoformat()} if start_at else {}),
                **({"break_glass": True} if break_glass else {}),
            },
        )
        if outcome.action == rules.BREAK_GLASS:
            _break_glass(access_request, emergency, info)
        elif outcome.action == rules.DENY:
            _close_request(
                access_request,
                Status.DENIED,
                None,
                outcome.reason,
                info,
                Action.REQUEST_DENIED,
                data={
                    "by_policy": "deny_above",
                    "trace": outcome.trace,
                    **_model_said(access_request),
                },
            )
        elif outcome.action == rules.AUTO_APPROVE:
            _approve(access_request, None, info, {"by_policy": outcome.reason})
    return access_request


def _break_glass(access_request: AccessRequest, emergency, info: trail.RequestInfo) -> None:
    requester = access_request.requester
    review = BreakGlassReview.objects.create(
        request=access_request, due_at=access_request.created_at + emergency.review_within
    )
    trail.record(
        action=Action.REQUEST_BREAK_GLASS,
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
        if locked := lock_refusal(reviewer):
            raise NotAllowed(f"you may not close a review while {locked}")
        if review.closed_at is not None:
            raise Conflict(f"closed already by {review.closed_by}")
        review.closed_at, review.closed_by, review.notes = timezone.now(), reviewer, notes
        review.save(update_fields=["closed_at", "closed_by", "notes"])
        trail.record(
            action=Action.REVIEW_CLOSED,
            info=info,
            actor=reviewer,
            target=access_request,
            reason=notes[:MAX_REASON_LENGTH],
            data={"overdue": review.closed_at > review.due_at},
        )
    return review


def _check_approver_pool(access_request: AccessRequest) -> None:
    """Fail closed: a request nobody could approve is refused now. A locked approver
    cannot decide, so does not count."""
    locked = locked_user_ids()
    for index, (_, needed) in enumerate(step_needs(access_request)):
        # Enough is enough: the first `needed` found, not a count of everyone.
        pool = (
            eligible_approvers(access_request, step=index)
            .exclude(pk__in=locked)
            .values_list("pk", flat=True)
        )
        if len(pool[:needed]) < needed:
            raise InvalidRequest(
                f"{access_request.profile.slug} needs {needed} approver(s) other than you "
                f"(step {index + 1}) and there are not enough; ask an admin to fix the catalog"
            )


def _approve(access_request: AccessRequest, actor, info: trail.RequestInfo, data: dict) -> None:
    """Mark approved and schedule the grant (or the extension)."""
    transition(
        access_request,
        Status.APPROVED,
        action=Action.REQUEST_APPROVED,
        info=info,
        actor=actor,
        data={**data, **_model_said(access_request)},
        decided_at=timezone.now(),
    )
    if access_request.extends_id:
        _schedule_extension(access_request)
        return
    grant = Grant.objects.create(
        request=access_request, duration=access_request.duration, created_at=timezone.now()
    )
    starts = access_request.start_at
    trail.record(
        action=Action.GRANT_SCHEDULED,
        info=info,
        actor=actor,
        target=grant,
        to_status=GrantStatus.SCHEDULED,
        data={"request": str(access_request.id), "starts": starts.isoformat() if starts else ""},
    )
    transaction.on_commit(lambda: _enqueue(task_names.ACTIVATE_GRANT, grant.id, eta=starts))


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
    reason = checked_reason(reason, "say why you deny it")
    with transaction.atomic():
        access_request = _lock_request(request_id)
        step_up = _check_decider(access_request, approver)
        _record_decision(access_request, approver, Approval.Decision.DENY, reason, step_up, info)
        _close_request(
            access_request,
            Status.DENIED,
            approver,
            reason,
            info,
            Action.REQUEST_DENIED,
            data=_model_said(access_request),
        )
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
            access_request, Status.CANCELLED, actor, reason.strip(), info, Action.REQUEST_CANCELLED
        )
    return access_request


def approvers_notified(*, request_id: UUID, via: str, recipients: list[str]) -> None:
    """Record how the approvers of a request were asked (a notifier's report), so
    its page can say so and the trail shows who was told. An empty list: the
    notifier had nobody it could reach."""
    with transaction.atomic():
        access_request = AccessRequest.objects.filter(pk=request_id).first()
        if access_request is None:
            raise NotFound("no such request")
        trail.record(
            action=Action.REQUEST_APPROVERS_NOTIFIED,
            info=trail.SYSTEM,
            target=access_request,
            data={"via": via, "recipients": sorted(recipients)},
        )


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
                Action.REQUEST_EXPIRED,
            )
            expired += 1
    return expired


def _check_decider(access_request: AccessRequest, approver):
    """Rights first, then state, then MFA: returns the approver's recent MFA verification."""
    refusal = decision_refusal(approver, access_request)
    if refusal is not None:
        raise (Conflict if refusal.conflict else NotAllowed)(refusal.message)
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
        action=DECISION_ACTIONS[decision],
        info=info,
        actor=approver,
        target=access_request,
        reason=comment,
        data={
            "mfa_verified_at": step_up.verified_at.isoformat(),
            "mfa_method": step_up.method,
            **_model_said(access_request),
        },
    )


def _model_said(access_request: AccessRequest) -> dict:
    """The learned model's version and score, for each decision's audit event."""
    if access_request.risk_model_id is None:
        return {}
    return {"risk_model": access_request.risk_model_id, "unusual": access_request.unusual_score}


def _close_request(access_request, status, actor, reason, info, action, data=None) -> None:
    transition(
        access_request,
        status,
        action=action,
        info=info,
        actor=actor,
        reason=reason,
        data=data,
        decided_at=timezone.now(),
        decision_reason=reason,
    )


def _schedule_extension(extension: AccessRequest) -> None:
    trail.record(
        action=Action.GRANT_EXTENSION_SCHEDULED,
        info=trail.SYSTEM,
        target=extension.extends,
        data={"request": str(extension.pk), "duration": format_duration(extension.duration)},
    )
    transaction.on_commit(lambda: _enqueue(task_names.EXTEND_GRANT, extension.pk))
