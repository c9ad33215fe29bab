"""What every transition shares: row locks, the state names, handing work to Celery."""

import logging
from uuid import UUID

from celery import current_app

from audit import trail
from broker.lifecycle.errors import InvalidRequest, NotFound
from broker.models import AccessRequest, Grant
from lib.providers import GrantContext
from lib.text import has_control_characters

logger = logging.getLogger(__name__)

Status = AccessRequest.Status
GrantStatus = Grant.Status
MAX_REASON_LENGTH = 2000


def checked_reason(reason: str, missing: str) -> str:
    """A reason someone must give (a denial, a lock): stripped, present, not too long,
    plain text (it reaches terminals, Slack and PostgreSQL, which takes no NUL)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest(missing, fields={"reason": "a reason is required"})
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidRequest(
            "the reason is too long", fields={"reason": f"at most {MAX_REASON_LENGTH} characters"}
        )
    if has_control_characters(reason):
        raise InvalidRequest(
            "the reason holds control characters", fields={"reason": "plain text only"}
        )
    return reason


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


def _enqueue(task_name: str, object_id, eta=None, expires=None) -> bool:
    """Send the task for an id (or a list of ids); False if the broker would not
    take it. The sweeper catches anything lost here (broker down at commit time)."""
    if isinstance(object_id, list):
        argument: str | list[str] = [str(one) for one in object_id]
    else:
        argument = str(object_id)
    try:
        current_app.send_task(task_name, args=[argument], eta=eta, expires=expires)
    except Exception:
        logger.exception("could not enqueue %s for %s; the sweeper will", task_name, object_id)
        return False
    return True


def transition(
    obj: AccessRequest | Grant,
    to_status: str,
    *,
    action: str,
    info: trail.RequestInfo = trail.SYSTEM,
    actor=None,
    reason: str = "",
    data: dict | None = None,
    whole_row: bool = False,
    **changes,
) -> None:
    """Move a locked request or grant to `to_status`: set it and `changes`, save
    them (`whole_row`: the whole row, when the caller changed more of it before,
    such as the attempt counters), and record the audit event from the old status
    to the new one in the caller's transaction (if the event cannot be written,
    the change rolls back with it)."""
    from_status = obj.status
    obj.status = to_status
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.save(update_fields=None if whole_row else ["status", *changes])
    trail.record(
        action=action,
        info=info,
        actor=actor,
        target=obj,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data,
    )


def _claim_grant(grant_id, statuses: list[str], *, with_requester: bool = True) -> Grant | None:
    """Lock the grant if it is in one of `statuses` and nobody else holds it.
    Revocation reads no more than the grant and its profile: it runs by the
    hundred after an outage (bench/README.md, revocation throughput)."""
    related = ["request__profile", *(["request__requester"] if with_requester else [])]
    claimed = (
        Grant.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related(*related)
        .filter(pk=_as_uuid(grant_id, "grant"), status__in=statuses)[:1]
    )  # not first(): ordering by the key it filters on costs query building only
    return claimed[0] if claimed else None


def _context(grant: Grant) -> GrantContext:
    return GrantContext(
        grant_id=str(grant.id),
        request_id=str(grant.request_id),
        profile_id=grant.profile.slug,
        username=grant.request.requester.get_username(),
        config=grant.profile.definition.provider.config,
        expires_at=grant.expires_at,
        ssh_public_key=grant.request.ssh_public_key,
        email=grant.request.requester.email,
    )
