"""Applying a validated catalog: profiles, declared groups and the catalog-wide
settings, then whoever lost standing by it (standing.py)."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit import trail
from audit.actions import Action
from broker.catalog.load import Catalog
from broker.lifecycle.standing import StandingChange, access_enforce_standing
from broker.models import AccessProfile, CatalogState
from broker.policy.reviews import kept_out_of, regranted_by_file


@dataclass
class CatalogDiff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Requests withdrawn and grants revoked (or kept, by the catalog's rule) because
    # their requester lost standing in this sync: each said, nothing silent.
    standing: list[StandingChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def catalog_sync(*, catalog: Catalog, actor=None, info: trail.RequestInfo) -> CatalogDiff:
    diff = CatalogDiff(warnings=list(catalog.warnings))
    with transaction.atomic():
        existing = {p.slug: p for p in AccessProfile.objects.select_for_update()}
        for spec in catalog.spec.profiles:
            stored = spec.model_dump(mode="json")
            profile = existing.pop(spec.id, None)
            if profile is None:
                diff.added.append(spec.id)
                AccessProfile.objects.create(
                    slug=spec.id,
                    title=spec.title,
                    provider_kind=spec.provider.kind,
                    spec=stored,
                )
                continue
            if profile.spec == stored and profile.enabled:
                continue  # as it was: nothing to save, audit or re-check
            diff.changed.append(spec.id)
            profile.title, profile.provider_kind = spec.title, spec.provider.kind
            profile.spec, profile.enabled = stored, True
            profile.save()
        for slug, profile in existing.items():
            if not profile.enabled:
                continue
            diff.removed.append(slug)
            profile.enabled = False
            profile.save(update_fields=["enabled", "updated_at"])
        diff.warnings.extend(_sync_groups(catalog))
        CatalogState.objects.update_or_create(
            pk=1,
            defaults={
                "risk": catalog.spec.risk.model_dump(mode="json"),
                "on_eligibility_lost": catalog.spec.on_eligibility_lost,
                "security": catalog.spec.security.model_dump(mode="json"),
                "containment": {
                    kind: rule.model_dump(mode="json")
                    for kind, rule in catalog.spec.containment.items()
                },
                "reviews": [r.model_dump(mode="json") for r in catalog.spec.reviews],
                "externals": catalog.spec.externals.model_dump(mode="json"),
                "sha256": catalog.sha256,
                "synced_at": timezone.now(),
            },
        )
        # With profiles, groups and the rule all applied: whoever lost standing.
        diff.standing = access_enforce_standing()
        trail.record(
            action=Action.CATALOG_SYNCED,
            info=info,
            actor=actor,
            reason=f"sha256 {catalog.sha256}",
            data={
                "sha256": catalog.sha256,
                "added": diff.added,
                "changed": diff.changed,
                "removed": diff.removed,
            },
        )
    return diff


def _sync_groups(catalog: Catalog) -> list[str]:
    """Make each declared group's Django members exactly the declared users, but for
    those an access review removed (its overlay holds until the file follows)."""
    warnings = []
    users = get_user_model().objects
    for name, usernames in catalog.spec.groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        found = list(users.filter(username__in=usernames))
        missing = sorted(set(usernames) - {u.get_username() for u in found})
        if missing:
            warnings.append(f"group {name!r}: no such user(s): {', '.join(missing)}")
        kept_out = kept_out_of(name)
        group.user_set.set([u for u in found if u.pk not in kept_out])
    return warnings + regranted_by_file(catalog)
