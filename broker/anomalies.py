"""Continuous monitoring: patterns in the audit trail worth a human look.

Each detector names its evidence (audit event sequence numbers) and what the
pattern is about (a user, a profile, a provider target: its subjects); an alert
is raised once per occurrence (its key), recorded in the audit trail, listed on
the auditors' page and posted to Slack's security channel. The catalog's
`containment` rules may also lock one of its subjects (lifecycle/locks.py).
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import user_zone
from audit import trail
from audit.actions import Action
from audit.models import AuditEvent
from broker.models import AccessProfile, AccessRequest, Alert, CatalogState
from broker.policy.locks import profile_target
from broker.policy.risk import risk_spec

FREQUENT_WINDOW, FREQUENT_COUNT = timedelta(days=7), 5
PAIR_WINDOW, PAIR_COUNT = timedelta(days=30), 5
QUICK_APPROVAL = timedelta(seconds=60)
NIGHT_HOURS = range(0, 6)
HIGH_RISK_WINDOW = timedelta(hours=1)


def detect(now=None) -> list[Alert]:
    now = now or timezone.now()
    raised = []
    for kind, key, message, evidence, subjects in [
        *_frequent_sensitive(now),
        *_rubber_stamping(now),
        *_break_glass(now),
        *_reconciler_revocations(now),
        *_night_quick_approvals(now),
        *_high_risk(now),
    ]:
        alert = _raise(kind, key, message, evidence, subjects, now)
        if alert is not None:
            raised.append(alert)
    return raised


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window (counted from the Unix epoch) that holds `now`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + window * ((now - epoch) // window)


def _about(user: str = "", profile: AccessProfile | None = None) -> dict[str, str]:
    """An alert's subjects: what a containment rule of its kind may lock."""
    subjects = {"user": user} if user else {}
    if profile is not None:
        subjects |= {"profile": profile.slug, "target": profile_target(profile)}
    return subjects


def _raise(kind: str, key: str, message: str, evidence: list[int], subjects: dict, now):
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind,
                key=key,
                message=message,
                evidence=evidence,
                subjects=subjects,
                created_at=now,
            )
            trail.record(
                action=Action.ALERT_RAISED,
                info=trail.SYSTEM,
                reason=message,
                data={"kind": kind, "evidence": evidence, "alert": alert.pk},
            )
    except IntegrityError:
        return None  # raised before
    return alert


def _events(action: str, since):
    return AuditEvent.objects.filter(action=action, created_at__gte=since)


def _frequent_sensitive(now):
    threshold = risk_spec().sensitive_from
    sensitive = {
        p.pk: p for p in AccessProfile.objects.all() if p.definition.sensitivity >= threshold
    }
    by_pair = defaultdict(list)
    activated = _events(Action.GRANT_ACTIVATED, now - FREQUENT_WINDOW).filter(target_type="grant")
    grant_ids = list(activated.values_list("target_id", flat=True))
    owners = {
        str(pk): (user, profile)
        for pk, user, profile in AccessRequest.objects.filter(
            grant__pk__in=grant_ids, profile_id__in=sensitive
        ).values_list("grant__pk", "requester__username", "profile_id")
    }
    for seq, target in activated.values_list("seq", "target_id"):
        if target in owners:
            by_pair[owners[target]].append(seq)
    for (user, profile), seqs in by_pair.items():
        if len(seqs) >= FREQUENT_COUNT:
            week = now.strftime("%G-W%V")
            yield ("frequent_sensitive", f"frequent:{user}:{profile}:{week}",
                   f"{user} activated {sensitive[profile].slug} {len(seqs)} times in 7 days",
                   seqs, _about(user, sensitive[profile]))  # fmt: skip


def _rubber_stamping(now):
    approved = _events(Action.REQUEST_APPROVED, now - PAIR_WINDOW).filter(
        target_type="accessrequest"
    )
    per_requester = defaultdict(list)
    by_id = {
        str(r.pk): r
        for r in AccessRequest.objects.filter(
            pk__in=list(approved.values_list("target_id", flat=True))
        ).select_related("requester")
    }
    for event in approved.order_by("seq"):
        found = by_id.get(event.target_id)
        approvers = tuple(sorted(event.data.get("approvers", [])))
        if found is not None and approvers:
            per_requester[found.requester.get_username()].append((event.seq, approvers))
    # Once per pair and window: later approvals by the same pair are the same pattern.
    window = window_start(now, PAIR_WINDOW)
    for requester, rows in per_requester.items():
        last = rows[-PAIR_COUNT:]
        if len(last) == PAIR_COUNT and len({approvers for _, approvers in last}) == 1:
            approvers = ", ".join(last[0][1])
            yield ("rubber_stamping", f"pair:{requester}:{approvers}:{window:%Y-%m-%d}",
                   f"the last {PAIR_COUNT} requests of {requester} were all approved by "
                   f"{approvers}", [seq for seq, _ in last], _about(requester))  # fmt: skip


def _break_glass(now):
    profiles = {p.slug: p for p in AccessProfile.objects.all()}
    for event in _events(Action.REQUEST_BREAK_GLASS, now - PAIR_WINDOW):
        profile = profiles.get(event.data.get("profile"))
        yield ("break_glass", f"break_glass:{event.target_id}",
               f"{event.actor} used break-glass on {event.data.get('profile')}: {event.reason}",
               [event.seq], _about(event.actor, profile))  # fmt: skip


def _reconciler_revocations(now):
    profiles = {p.slug: p for p in AccessProfile.objects.all()}
    for event in _events(Action.RECONCILE_ORPHAN_REVOKED, now - PAIR_WINDOW):
        # No grant explains an orphan, so no user: its profile and target, where it was found.
        profile = profiles.get(event.data.get("profile"))
        yield ("reconciler_revoked", f"reconciled:{event.seq}",
               f"the reconciler revoked a credential no grant explained: {event.reason}",
               [event.seq], _about(profile=profile))  # fmt: skip


def _night_quick_approvals(now):
    decisions = _events(Action.REQUEST_DECISION_APPROVE, now - PAIR_WINDOW).filter(
        target_type="accessrequest"
    )
    by_id = {
        str(r.pk): r
        for r in AccessRequest.objects.filter(
            pk__in=list(decisions.values_list("target_id", flat=True))
        ).select_related("requester")
    }
    users = {u.pk: u for u in get_user_model().objects.filter(
        pk__in=set(decisions.values_list("actor_id", flat=True)))}  # fmt: skip
    for event in decisions:
        found = by_id.get(event.target_id)
        approver = users.get(event.actor_id)
        if found is None or approver is None:
            continue
        local = event.created_at.astimezone(user_zone(approver))
        if event.created_at - found.created_at <= QUICK_APPROVAL and local.hour in NIGHT_HOURS:
            yield ("night_quick_approval", f"night:{event.seq}",
                   f"{event.actor} approved {found.requester.get_username()}'s request "
                   f"{int((event.created_at - found.created_at).total_seconds())} s after it "
                   f"was asked, at {local:%H:%M} their time", [event.seq],
                   _about(event.actor))  # fmt: skip


def _high_risk(now):
    """Requests scoring at least the catalog's `containment.high_risk.risk_from`
    (only when that rule exists: without a threshold there is no such pattern)."""
    rule = getattr(CatalogState.objects.first(), "containment", {}).get("high_risk")
    if not rule:
        return
    # A denied request gave nothing: the denial is the containment.
    risky = (
        AccessRequest.objects.filter(
            created_at__gte=now - HIGH_RISK_WINDOW, risk_score__gte=rule["risk_from"]
        )
        .exclude(status=AccessRequest.Status.DENIED)
        .select_related("requester", "profile")
    )
    submitted = dict(
        _events(Action.REQUEST_SUBMITTED, now - HIGH_RISK_WINDOW)
        .filter(target_id__in=[str(r.pk) for r in risky])
        .values_list("target_id", "seq")
    )
    for found in risky:
        user = found.requester.get_username()
        yield ("high_risk", f"high_risk:{found.pk}",
               f"{user} asked for {found.profile.slug} with risk {found.risk_score}",
               [submitted[str(found.pk)]] if str(found.pk) in submitted else [],
               _about(user, found.profile))  # fmt: skip
