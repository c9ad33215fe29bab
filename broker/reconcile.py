"""Reconciliation: credentials live at a source that no grant explains.

Airlock asks each provider configuration in the catalog which Airlock-made
credentials are still live (PostgreSQL roles with Airlock's prefix, Vault
tokens carrying Airlock's metadata, leases of the Vault roles Airlock uses)
and compares them with the handles of active and revoking grants.
"""

import json
import logging
from dataclasses import dataclass, field

from django.db import transaction

from broker import audit
from broker.models import AccessProfile, Grant
from integrations.providers import ProviderError, get_provider

logger = logging.getLogger(__name__)
EXPLAINING = [Grant.Status.ACTIVE, Grant.Status.REVOKING]


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
        spec = profile.policy.provider
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


def revoke_orphan(orphan: Orphan, *, actor=None, info: audit.RequestInfo) -> None:
    """Revoke it at the source, then record that (a failed revoke raises, unrecorded)."""
    get_provider(orphan.kind).revoke(orphan.handle)
    with transaction.atomic():
        audit.record(
            action="reconcile.orphan_revoked",
            info=info,
            actor=actor,
            data={"kind": orphan.kind, "handle": orphan.handle, "profile": orphan.profile},
        )


def report_orphans() -> Findings:
    """The periodic check: alert on findings and record them; change nothing."""
    findings = find_orphans()
    if findings.orphans:
        logger.error(
            "ALERT %d credential(s) live at their source without a grant: %s",
            len(findings.orphans),
            "; ".join(str(o) for o in findings.orphans),
        )
        with transaction.atomic():
            audit.record(
                action="reconcile.orphans_found",
                info=audit.SYSTEM,
                data={"orphans": [{"kind": o.kind, "handle": o.handle} for o in findings.orphans]},
            )
    for problem in findings.unreachable:
        logger.warning("reconcile could not check %s", problem)
    return findings
