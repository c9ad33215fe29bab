"""Reconciliation: credentials live at a source that no grant explains.

Airlock asks each provider configuration in the catalog which Airlock-made
credentials are still live (PostgreSQL roles with Airlock's prefix, Vault
tokens carrying Airlock's metadata, leases of the Vault roles Airlock uses)
and compares them with the handles of the grants that hold a live credential.

A credential no grant explains is either made behind Airlock's back or left by
a worker that died between minting it and recording it. The periodic check
revokes it once it has stayed unexplained for AIRLOCK_RECONCILE_REVOKE_AFTER:
longer than any activation takes to record what it minted, so an activation in
flight is never mistaken for an orphan.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import trail
from audit.actions import Action
from broker.models import AccessProfile, Grant, OrphanSighting
from lib.providers import ProviderError, get_provider

logger = logging.getLogger(__name__)
# The sweeper keeps retrying revoke_failed grants itself, with their own alert.
EXPLAINING = [Grant.Status.ACTIVE, Grant.Status.REVOKING, Grant.Status.REVOKE_FAILED]


@dataclass(frozen=True)
class Orphan:
    kind: str
    profile: str
    handle: dict

    def __str__(self) -> str:
        return f"{self.kind} {json.dumps(self.handle, sort_keys=True)} (seen via {self.profile})"


@dataclass
class Findings:
    orphans: list[Orphan] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


def _key(kind: str, handle: dict) -> str:
    return json.dumps([kind, handle], sort_keys=True)


def find_orphans() -> Findings:
    explained = {
        _key(kind, handle)
        for kind, handle in Grant.objects.filter(status__in=EXPLAINING).values_list(
            "request__profile__provider_kind", "handle"
        )
    }
    findings, seen = Findings(), set()
    for profile in AccessProfile.objects.order_by("slug"):
        spec = profile.definition.provider
        try:
            live = get_provider(spec.kind).live_handles(spec.config)
        except ProviderError as exc:
            findings.unreachable.append(f"{profile.slug} ({spec.kind}): {exc}")
            continue
        for handle in live:
            key = _key(spec.kind, handle)
            if key not in explained and key not in seen:
                seen.add(key)
                findings.orphans.append(Orphan(spec.kind, profile.slug, handle))
    return findings


def revoke_orphan(orphan: Orphan, *, actor=None, info: trail.RequestInfo) -> None:
    """Revoke it at the source, then record that (a failed revoke raises, unrecorded)."""
    get_provider(orphan.kind).revoke(orphan.handle)
    with transaction.atomic():
        trail.record(
            action=Action.RECONCILE_ORPHAN_REVOKED,
            info=info,
            actor=actor,
            data={"kind": orphan.kind, "handle": orphan.handle, "profile": orphan.profile},
        )


def reconcile_orphans() -> Findings:
    """The periodic check: alert on orphans, record them, and revoke those seen
    unexplained for longer than AIRLOCK_RECONCILE_REVOKE_AFTER (0: report only).

    Returns the orphans still live afterwards.
    """
    findings = find_orphans()
    if findings.orphans:
        logger.error(
            "ALERT %d credential(s) live at their source without a grant: %s",
            len(findings.orphans),
            "; ".join(str(o) for o in findings.orphans),
        )
        with transaction.atomic():
            trail.record(
                action=Action.RECONCILE_ORPHANS_FOUND,
                info=trail.SYSTEM,
                data={"orphans": [{"kind": o.kind, "handle": o.handle} for o in findings.orphans]},
            )
    for problem in findings.unreachable:
        logger.warning("reconcile could not check %s", problem)
    findings.orphans = _revoke_long_unexplained(findings.orphans)
    return findings


def _revoke_long_unexplained(orphans: list[Orphan]) -> list[Orphan]:
    now = timezone.now()
    keys = {_sighting_key(orphan): orphan for orphan in orphans}
    # Explained since, or gone at the source: forget them.
    OrphanSighting.objects.exclude(key__in=keys).delete()
    grace = settings.AIRLOCK_RECONCILE_REVOKE_AFTER
    remaining = []
    for key, orphan in keys.items():
        sighting, _ = OrphanSighting.objects.get_or_create(
            key=key,
            defaults={
                "kind": orphan.kind,
                "profile": orphan.profile,
                "handle": orphan.handle,
                "first_seen": now,
            },
        )
        if not grace or now - sighting.first_seen < grace or _explained_now(orphan):
            remaining.append(orphan)
            continue
        try:
            revoke_orphan(orphan, info=trail.SYSTEM)
        except ProviderError as exc:
            logger.error("ALERT could not revoke orphan %s: %s", orphan, exc)
            remaining.append(orphan)
        else:
            logger.warning("revoked orphan %s, unexplained since %s", orphan, sighting.first_seen)
            sighting.delete()
    return remaining


def _explained_now(orphan: Orphan) -> bool:
    # A retried activation may have just recorded a handle it reuses (a
    # PostgreSQL role named after the grant) since the scan read the grants.
    return Grant.objects.filter(
        status__in=EXPLAINING,
        request__profile__provider_kind=orphan.kind,
        handle=orphan.handle,
    ).exists()


def _sighting_key(orphan: Orphan) -> str:
    return hashlib.sha256(_key(orphan.kind, orphan.handle).encode()).hexdigest()
