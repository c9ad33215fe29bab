"""Grants: minted at activation, revoked early or at expiry, shown once."""

import json
import logging
from contextlib import suppress
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.selectors import recent_step_up
from audit import trail
from audit.actions import Action
from broker import task_names
from broker.lifecycle.common import (
    MAX_REASON_LENGTH,
    GrantStatus,
    _claim_grant,
    _context,
    _enqueue,
    _lock_grant,
    transition,
)
from broker.lifecycle.errors import (
    AlreadyShown,
    Conflict,
    NotAllowed,
    NotFound,
    StepUpRequired,
    TryAgainLater,
)
from broker.models import Grant
from broker.policy.approvers import can_approve
from broker.policy.locks import lock_refusal
from broker.policy.requesters import standing_problem
from lib.moments import format_moment
from lib.providers import Issued, ProviderError, get_provider
from lib.secrets import decrypt_secret, encrypt_secret

logger = logging.getLogger(__name__)

ACTIVATION_MAX_ATTEMPTS = 5
# A grant approved this long ago and still scheduled lost its activation task.
SCHEDULED_GRACE = timedelta(seconds=30)


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
                _end_grant(grant, GrantStatus.FAILED, problem, Action.GRANT_FAILED)
                return grant
            now = timezone.now()
            grant.expires_at = now + grant.duration
            grant.activation_attempts += 1
            grant.last_attempt_at = now
            provider = get_provider(grant.profile.provider_kind)
            try:
                issued = provider.grant(_context(grant))
            except ProviderError as exc:
                retry = _record_activation_failure(grant, exc)
            else:
                _record_activation(grant, provider, issued, now)
    except Exception:
        if issued is not None:
            with suppress(ProviderError):
                provider.revoke(issued.handle)
        raise
    if retry is not None:
        raise TryAgainLater(str(retry))
    return grant


def _record_activation_failure(grant: Grant, exc: ProviderError) -> ProviderError | None:
    """Record a failed attempt; return the error if a retry may help, else fail the grant."""
    if exc.permanent or grant.activation_attempts >= ACTIVATION_MAX_ATTEMPTS:
        _end_grant(grant, GrantStatus.FAILED, str(exc), Action.GRANT_FAILED)
        return None
    grant.last_error = str(exc)
    grant.save(update_fields=["activation_attempts", "last_attempt_at", "last_error"])
    trail.record(
        action=Action.GRANT_ACTIVATION_RETRY,
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
            provider.revoke(issued.handle)
            status = GrantStatus.FAILED
        except ProviderError:
            status = GrantStatus.REVOKE_FAILED
        message = "the provider issued a credential that outlives the grant"
        _end_grant(grant, status, message, Action.GRANT_FAILED)
        return
    # A source may end the credential a little early (vault.database keeps a pad
    # before its VALID UNTIL): the grant ends with it, not after it.
    expires_at = min(grant.expires_at, issued.expires_at)
    transition(
        grant,
        GrantStatus.ACTIVE,
        action=Action.GRANT_ACTIVATED,
        whole_row=True,
        data={
            "expires_at": expires_at.isoformat(),
            "source_expires_at": issued.expires_at.isoformat(),
            "handle": issued.handle,
            **issued.details,
        },
        activated_at=now,
        expires_at=expires_at,
        handle=issued.handle,
        secret=encrypt_secret(json.dumps(issued.credential)),
        last_error="",
    )
    transaction.on_commit(lambda: _enqueue(task_names.EXPIRE_GRANT, grant.id, eta=expires_at))


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
        # Giving one's own access back is always allowed; acting on others' is not, locked.
        if actor.pk != grant.request.requester_id and (locked := lock_refusal(actor)):
            raise NotAllowed(f"you may not revoke others' access while {locked}")
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
        _end_grant(grant, GrantStatus.REVOKED, reason, Action.GRANT_REVOKED, actor=actor, info=info)
        return
    transition(
        grant,
        GrantStatus.REVOKING,
        action=Action.GRANT_REVOKE_REQUESTED,
        info=info,
        actor=actor,
        reason=reason,
        end_reason=reason[:200],
    )
    transaction.on_commit(lambda: _enqueue(task_names.REVOKE_GRANT, grant.id))


def grant_retry_revocation(*, grant_id: UUID | str, actor, info: trail.RequestInfo) -> Grant:
    """An admin asks to try a failed revocation again (after fixing the cause)."""
    if not actor.is_superuser:
        raise NotAllowed("only an admin can retry a revocation")
    with transaction.atomic():
        grant = _lock_grant(grant_id)
        if grant.status != GrantStatus.REVOKE_FAILED:
            raise Conflict(f"the grant is {grant.status}, not revoke_failed")
        transition(
            grant,
            GrantStatus.REVOKING,
            action=Action.GRANT_REVOKE_RETRY_REQUESTED,
            info=info,
            actor=actor,
            revoke_attempts=0,
            ended_at=None,
        )
        transaction.on_commit(lambda: _enqueue(task_names.REVOKE_GRANT, grant.id))
    return grant


def grant_expire(*, grant_id: UUID | str) -> Grant | None:
    """Revoke an active grant whose time is up (the ETA task and the sweeper)."""
    with transaction.atomic():
        grant = _claim_grant(grant_id, [GrantStatus.ACTIVE], with_requester=False)
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
        grant = _claim_grant(
            grant_id, [GrantStatus.REVOKING, GrantStatus.REVOKE_FAILED], with_requester=False
        )
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
            shown = f" at {format_moment(grant.revealed_at)}" if grant.revealed_at else ""
            raise AlreadyShown(
                f"the credential was already shown, once{shown}; it cannot be shown again: "
                f"ask for a new grant of {grant.profile.slug}",
                profile_slug=grant.profile.slug,
            )
        if recent_step_up(user) is None:
            raise StepUpRequired("verify your MFA code first")
        credential = json.loads(decrypt_secret(grant.secret))
        grant.secret = None
        grant.revealed_at = timezone.now()
        grant.save(update_fields=["secret", "revealed_at"])
        trail.record(action=Action.GRANT_CREDENTIAL_REVEALED, info=info, actor=user, target=grant)
    return credential


def _revoke_at_source(grant: Grant) -> str | None:
    """Revoke a locked grant at its provider and record the outcome.

    Returns the error when a retry may help; the caller raises it after commit
    so the recorded attempt is not rolled back.
    """
    grant.revoke_attempts += 1
    grant.last_attempt_at = timezone.now()
    try:
        details = get_provider(grant.profile.provider_kind).revoke(grant.handle)
    except ProviderError as exc:
        if grant.status == GrantStatus.REVOKE_FAILED:
            # Already alerted and audited: note the attempt and keep trying on later sweeps.
            grant.last_error = str(exc)
            grant.save(update_fields=["revoke_attempts", "last_attempt_at", "last_error"])
            return None
        if exc.permanent or grant.revoke_attempts >= settings.AIRLOCK_REVOKE_MAX_ATTEMPTS:
            _end_grant(grant, GrantStatus.REVOKE_FAILED, str(exc), Action.GRANT_REVOKE_FAILED)
            logger.error("ALERT grant %s could not be revoked: %s", grant.id, exc)
            return None
        transition(
            grant,
            GrantStatus.REVOKING,
            action=Action.GRANT_REVOKE_RETRY,
            reason=str(exc),
            data={"attempt": grant.revoke_attempts},
            whole_row=True,
            last_error=str(exc),
        )
        return str(exc)
    action = Action.GRANT_EXPIRED if grant.end_reason == "expired" else Action.GRANT_REVOKED
    _end_grant(grant, GrantStatus.REVOKED, grant.end_reason, action, data=details)
    return None


def _end_grant(grant, status, reason, action, *, actor=None, info=trail.SYSTEM, data=None) -> None:
    if status == GrantStatus.REVOKE_FAILED:
        # Keep why it was ending (expired, relinquished...); the error is separate.
        end_reason, last_error = grant.end_reason or reason[:200], reason
    else:
        end_reason = reason[:200]
        last_error = "" if status == GrantStatus.REVOKED else reason
    transition(
        grant,
        status,
        action=action,
        info=info,
        actor=actor,
        reason=reason,
        data=data,
        whole_row=True,
        ended_at=timezone.now(),
        end_reason=end_reason,
        last_error=last_error,
        secret=None,  # a credential that can no longer be used is never shown
    )
