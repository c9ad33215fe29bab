"""More time on a live grant: asked, decided like a request, applied once."""

import json
import logging
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import trail
from audit.actions import Action
from broker import task_names
from broker.lifecycle.common import (
    MAX_REASON_LENGTH,
    GrantStatus,
    Status,
    _claim_grant,
    _context,
    _enqueue,
    _lock_grant,
    _lock_request,
)
from broker.lifecycle.errors import Conflict, InvalidRequest, NotAllowed, NotFound, TryAgainLater
from broker.lifecycle.grants import SCHEDULED_GRACE
from broker.lifecycle.requests import _approve
from broker.models import AccessRequest, Grant
from broker.policy.extensions import extension_limit
from broker.policy.requesters import standing_problem
from lib.durations import format_duration
from lib.providers import ProviderError, get_provider
from lib.secrets import encrypt_secret

logger = logging.getLogger(__name__)


Outcome = AccessRequest.ExtensionOutcome
# Approved, and neither applied nor failed for good yet: an extension under way.
APPROVED_NOT_SETTLED = Q(status=Status.APPROVED, extension_outcome="")


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
        limit = extension_limit(grant)
        if limit is None:
            raise NotAllowed(f"{grant.profile.slug} does not allow extensions")
        problem = standing_problem(grant.request.requester, grant.profile)
        if problem:
            raise NotAllowed(f"this grant cannot be extended: {problem}")
        if grant.status != GrantStatus.ACTIVE:
            raise Conflict(f"the grant is {grant.status}")
        if limit.refusal:
            raise NotAllowed(limit.refusal)
        extension_rules = limit.rules
        now = timezone.now()
        errors: dict[str, str] = {}
        if duration <= timedelta(0):
            errors["duration"] = "must be positive"
        elif grant.duration + duration > limit.longest:
            errors["duration"] = (
                f"at most {format_duration(limit.room(grant))} more "
                f"({format_duration(limit.longest)} in all {limit.why})"
            )
        if grant.profile.definition.reason_required and not reason:
            errors["reason"] = "a reason is required"
        elif len(reason) > MAX_REASON_LENGTH:
            errors["reason"] = f"at most {MAX_REASON_LENGTH} characters"
        if errors:
            raise InvalidRequest("the extension is not valid", fields=errors)
        under_way = grant.extension_requests.filter(Q(status=Status.PENDING) | APPROVED_NOT_SETTLED)
        if under_way.exists():
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
            pending_until=min(now + grant.profile.definition.pending_ttl, grant.expires_at),
            extends=grant,
        )
        trail.record(
            action=Action.REQUEST_SUBMITTED,
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
        if limit.by_policy:
            by_policy = f"{grant.profile.slug}: extension.approval auto"
            _approve(extension, None, info, {"by_policy": by_policy})
    return extension


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
        if extension.extension_outcome:
            return None  # settled already: applied, or failed for good
        problem = standing_problem(grant.request.requester, grant.profile)
        if problem:
            _record_extension_failure(grant, extension, problem)
            return grant
        provider = get_provider(grant.profile.provider_kind)
        new_expiry = grant.expires_at + extension.duration
        old_handle = None  # what to revoke once the new credential is recorded
        if not provider.extends_in_place:
            context = replace(_context(grant), expires_at=new_expiry, serial=grant.extensions + 1)
            try:
                issued = provider.grant(context)
            except ProviderError as exc:
                if not exc.permanent:
                    raise TryAgainLater(str(exc)) from exc
                _record_extension_failure(grant, extension, str(exc))
                return grant
            if issued.expires_at > new_expiry:
                # Principle 1, as at activation: never a credential that outlives its grant.
                outlives = "the provider issued a credential that outlives the grant"
                try:
                    provider.revoke(issued.handle)
                except ProviderError as exc:
                    logger.error("ALERT %s and could not be revoked: %s", outlives, exc)
                _record_extension_failure(grant, extension, outlives)
                return grant
            new_expiry = issued.expires_at
            old_handle = grant.handle
            grant.handle = issued.handle
            grant.secret = encrypt_secret(json.dumps(issued.credential))
            grant.revealed_at = None
        old_expiry = grant.expires_at
        grant.expires_at = new_expiry
        grant.duration += extension.duration
        grant.extensions += 1
        grant.save()
        extension.extension_outcome = Outcome.APPLIED
        extension.save(update_fields=["extension_outcome"])
        trail.record(
            action=Action.GRANT_EXTENDED,
            info=trail.SYSTEM,
            target=grant,
            data={
                "request": str(extension.pk),
                "old_expires_at": old_expiry.isoformat(),
                "expires_at": new_expiry.isoformat(),
                "handle": grant.handle,
            },
        )
        transaction.on_commit(lambda: _enqueue(task_names.EXPIRE_GRANT, grant.id, eta=new_expiry))
    if old_handle is None:
        return grant  # extended in place: the same credential lives on
    # The old credential goes only once the new one is recorded; if this fails it
    # still dies at its own expiry at the source, and the reconciler reports it.
    try:
        provider.revoke(old_handle)
    except ProviderError as exc:
        logger.error("ALERT old credential of extended grant %s not revoked: %s", grant.id, exc)
    return grant


def _record_extension_failure(grant: Grant, extension: AccessRequest, reason: str) -> None:
    extension.extension_outcome = Outcome.FAILED
    extension.save(update_fields=["extension_outcome"])
    trail.record(
        action=Action.GRANT_EXTENSION_FAILED,
        info=trail.SYSTEM,
        target=grant,
        reason=reason,
        data={"request": str(extension.pk)},
    )


def _unapplied_extensions(now) -> list:
    """Approved extension requests of active grants not settled yet (their task lost)."""
    return list(
        AccessRequest.objects.filter(
            APPROVED_NOT_SETTLED,
            extends__status=GrantStatus.ACTIVE,
            decided_at__lte=now - SCHEDULED_GRACE,
        ).values_list("pk", flat=True)[:500]
    )
