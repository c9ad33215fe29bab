"""Locks: the security role stops a user, a profile or a provider target at once.

A lock is one more way to lose standing (standing.py): placing it withdraws the
pending requests in its scope and revokes its live grants at the source, never
kept whatever `on_eligibility_lost` says; while it holds, submission, approval,
activation, extension and reveal all refuse, naming it. Lifting it takes two
people of the security role, one to propose and another to confirm; a locked
member does neither (so nobody lifts their own lock). Every step is an audit
event in the step's transaction.
"""

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import recent_step_up_record
from audit import trail
from audit.actions import Action
from audit.models import AuditEvent
from broker.lifecycle.common import _lock, checked_reason
from broker.lifecycle.errors import (
    Conflict,
    InvalidRequest,
    LifecycleError,
    NotAllowed,
    StepUpRequired,
)
from broker.lifecycle.standing import StandingChange, _revoke_for_standing, access_enforce_standing
from broker.models import AccessProfile, Alert, CatalogState, Grant, Lock
from broker.policy.locks import (
    holding_locks,
    is_security,
    known_targets,
    lock_refusal,
    profiles_at,
    refusal,
)
from lib.durations import parse_duration
from lib.text import without_control_characters

logger = logging.getLogger(__name__)
# A proposal to lift waits this long for its second person, then lapses.
LIFT_PROPOSAL_TTL = timedelta(hours=24)
LOCKS = Lock.objects.select_related("user", "profile", "placed_by", "lift_proposed_by")


def lock_place(
    *,
    actor,
    scope: str,
    subject: str,
    reason: str,
    info: trail.RequestInfo,
    duration: timedelta | None = None,
    evidence: list[int] | None = None,
) -> tuple[Lock, list[StandingChange]]:
    """Lock `subject` (a username, a profile slug, or a provider target such as
    postgres:AIRLOCK_PG_DSN_PAYMENTS) for `duration` (None: until lifted), then
    take away what is live in its scope. `actor` None: automatic containment,
    whose `evidence` names the audit events that set it off."""
    reason = checked_reason(reason, "say why you lock it")
    if actor is not None:
        _check_security_member(actor, "place locks")
    if duration is not None and duration <= timedelta(0):
        raise InvalidRequest("a lock lasts a while", fields={"duration": "a positive duration"})
    held = _subject(scope, subject)
    now = timezone.now()
    with transaction.atomic():
        lock = Lock.objects.create(
            scope=scope,
            reason=reason,
            placed_by=actor,
            placed_at=now,
            ends_at=now + duration if duration else None,
            evidence=list(evidence or []),
            **held,
        )
        trail.record(
            action=Action.LOCK_PLACED,
            info=info,
            actor=actor,
            target=lock,
            reason=reason,
            data=_facts(lock),
        )
    # Each request and grant in its own transaction, after the lock is on record:
    # should this process die here, approval and activation refuse by the lock,
    # and the periodic standing watch revokes what is live.
    return lock, access_enforce_standing(**_standing_scope(lock))


def lock_lift(*, lock_id, actor, reason: str = "", info: trail.RequestInfo) -> Lock:
    """Propose lifting a lock or, when another security member proposed it within
    LIFT_PROPOSAL_TTL, confirm it: the lock ends. Nothing it took away comes back."""
    _check_security_member(actor, "lift locks")
    now = timezone.now()
    with transaction.atomic():
        lock = _lock(LOCKS, lock_id, "lock")
        if lock.ended_at is not None or (lock.ends_at is not None and lock.ends_at <= now):
            raise Conflict("the lock has already ended")
        proposed = (
            lock.lift_proposed_at is not None
            and now - lock.lift_proposed_at < LIFT_PROPOSAL_TTL
            and _may_lift(lock.lift_proposed_by)  # not locked or out of the role since
        )
        if not proposed:
            lock.lift_reason = checked_reason(reason, "say why it can be lifted")
            lock.lift_proposed_by, lock.lift_proposed_at = actor, now
            lock.save(update_fields=["lift_reason", "lift_proposed_by", "lift_proposed_at"])
            trail.record(
                action=Action.LOCK_LIFT_PROPOSED,
                info=info,
                actor=actor,
                target=lock,
                reason=lock.lift_reason,
                data=_facts(lock),
            )
            return lock
        if lock.lift_proposed_by_id == actor.pk:
            raise Conflict(
                "you proposed lifting it: a second person of the security role must confirm"
            )
        # The confirming person may add a reason of their own, checked as any other.
        why = checked_reason(reason, "") if (reason or "").strip() else lock.lift_reason
        lock.ended_at, lock.ended_by = now, actor
        lock.save(update_fields=["ended_at", "ended_by"])
        data = {**_facts(lock), "proposed_by": lock.lift_proposed_by.get_username()}
        trail.record(
            action=Action.LOCK_LIFTED,
            info=info,
            actor=actor,
            target=lock,
            reason=why,
            data=data,
        )
    return lock


def locks_end_expired(*, limit: int = 500) -> int:
    """Record the end of locks whose end time passed (they stopped holding then)."""
    ended = 0
    with transaction.atomic():
        due = (
            Lock.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user", "profile")
            .filter(ended_at=None, ends_at__lte=timezone.now())
            .order_by("ends_at")[:limit]
        )
        for lock in due:
            lock.ended_at = lock.ends_at
            lock.save(update_fields=["ended_at"])
            trail.record(
                action=Action.LOCK_ENDED,
                info=trail.SYSTEM,
                target=lock,
                reason="its end time passed",
                data=_facts(lock),
            )
            ended += 1
    return ended


def alerts_contain(*, limit: int = 100) -> list[Lock]:
    """Apply the catalog's `containment` rules to alerts not yet looked at: an
    alert whose kind has a rule locks the subject the rule names, for the rule's
    duration, with the alert's events as evidence (unless a lock already holds
    there). Each alert is looked at once, in a transaction of its own."""
    rules = getattr(CatalogState.objects.first(), "containment", {})
    unchecked = Alert.objects.filter(containment_checked_at=None).order_by("created_at")
    placed = []
    for alert_id in list(unchecked.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            alert = unchecked.select_for_update(skip_locked=True).filter(pk=alert_id).first()
            if alert is None:
                continue  # another worker has it
            alert.lock = _contain(alert, rules.get(alert.kind))
            alert.containment_checked_at = timezone.now()
            alert.save(update_fields=["containment_checked_at", "lock"])
        if alert.lock is not None:
            placed.append(alert.lock)
    return placed


def _contain(alert: Alert, rule: dict | None) -> Lock | None:
    subject = alert.subjects.get(rule["scope"], "") if rule else ""
    if not subject or _already_locked(rule["scope"], subject):
        return None
    try:
        lock, _ = lock_place(
            actor=None,
            scope=rule["scope"],
            subject=subject,
            # The message quotes what people typed: control characters would refuse it.
            reason=without_control_characters(
                f"automatic containment ({alert.kind}): {alert.message}"
            ),
            duration=parse_duration(rule["duration"]),
            evidence=alert.evidence,
            info=trail.SYSTEM,
        )
    except LifecycleError as exc:  # the subject is gone meanwhile: nothing left to lock
        logger.warning("containment of alert %s locked nothing: %s", alert.pk, exc.message)
        return None
    _revoke_evidenced_grants(alert, lock)
    return lock


def _revoke_evidenced_grants(alert: Alert, lock: Lock) -> None:
    """The grants the alert's events name end too (such as the one a locked
    approver waved through at night), whoever holds them."""
    events = AuditEvent.objects.filter(seq__in=alert.evidence)
    named = Q(pk__in=list(events.filter(target_type="grant").values_list("target_id", flat=True)))
    named |= Q(
        request__in=list(
            events.filter(target_type="accessrequest").values_list("target_id", flat=True)
        )
    )
    live = Grant.objects.filter(named, status__in=[Grant.Status.SCHEDULED, Grant.Status.ACTIVE])
    for grant_id in live.values_list("pk", flat=True):
        _revoke_for_standing(grant_id, f"named by alert {alert.pk} ({alert.kind}): {refusal(lock)}")


def _already_locked(scope: str, subject: str) -> bool:
    held = holding_locks().filter(scope=scope)
    if scope == Lock.Scope.USER:
        return held.filter(user__username=subject).exists()
    if scope == Lock.Scope.PROFILE:
        return held.filter(profile__slug=subject).exists()
    return held.filter(target=subject).exists()


def _may_lift(member) -> bool:
    return member.is_active and is_security(member) and lock_refusal(member) is None


def _check_security_member(actor, doing: str) -> None:
    """Rights first, then MFA, as for approvals."""
    if not is_security(actor):
        raise NotAllowed(f"only the security role (the catalog's `security:`) may {doing}")
    if locked := lock_refusal(actor):
        raise NotAllowed(f"you may not {doing} while {locked}")
    if recent_step_up_record(actor) is None:
        raise StepUpRequired("verify your MFA code first")


def _subject(scope: str, subject: str) -> dict:
    subject = (subject or "").strip()
    if scope == Lock.Scope.USER:
        user = get_user_model().objects.filter(username=subject).first()
        if user is None:
            raise InvalidRequest("no such user", fields={"subject": f"no user {subject!r}"})
        return {"user": user}
    if scope == Lock.Scope.PROFILE:
        profile = AccessProfile.objects.filter(slug=subject).first()
        if profile is None:
            raise InvalidRequest("no such profile", fields={"subject": f"no profile {subject!r}"})
        return {"profile": profile}
    if scope == Lock.Scope.TARGET:
        # Disabled profiles' targets too: disabling them is a first response, the
        # lock keeps them off once they come back.
        targets = known_targets(enabled_only=False)
        if subject not in targets:
            known = ", ".join(sorted(targets)) or "none"
            raise InvalidRequest(
                "no profile's credentials live there", fields={"subject": f"known targets: {known}"}
            )
        return {"target": subject}
    raise InvalidRequest(
        "a lock is on a user, a profile or a target",
        fields={"scope": "one of user, profile, target"},
    )


def _standing_scope(lock: Lock) -> dict:
    if lock.scope == Lock.Scope.USER:
        return {"user_ids": [lock.user_id]}
    if lock.scope == Lock.Scope.PROFILE:
        return {"profile_ids": [lock.profile_id]}
    return {"profile_ids": [p.pk for p in profiles_at(lock.target)]}


def _facts(lock: Lock) -> dict:
    return {
        "lock": str(lock.pk),
        "scope": lock.scope,
        "subject": lock.subject,
        "ends_at": lock.ends_at.isoformat() if lock.ends_at else "",
        "evidence": lock.evidence,
    }
