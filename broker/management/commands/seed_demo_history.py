import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.selectors import user_zone
from broker.models import AccessProfile, AccessRequest, Approval, Grant
from broker.riskmodel import store, synthetic

# What alice of the demo usually asks for, and how often (relative weights).
HABITS = {
    "payments-db-readonly": 5.0,
    "payments-secrets": 3.0,
    "payments-aws-read": 2.0,
    "core-db-readonly": 1.0,
    "payments-hosts-ssh": 1.0,
    "payments-db-write": 0.5,
}
DEMO_SEED = 1
DEMO_REASON = "(demo history)"


class Command(BaseCommand):
    help = (
        "Give the demo's alice 90 days of past requests (office hours, her usual profiles, "
        "approved by bob, held and expired) and train the model of usual access on them. "
        "Does nothing when alice has asked for anything already."
    )

    def handle(self, *args, **options):
        users = get_user_model().objects
        alice, bob = users.filter(username="alice").first(), users.filter(username="bob").first()
        profiles = {p.slug: p for p in AccessProfile.objects.filter(slug__in=HABITS)}
        if alice is None or bob is None or not profiles:
            self.stdout.write("no demo users or profiles: run seed_demo and sync_catalog first")
            return
        if AccessRequest.objects.filter(requester=alice).exists():
            self.stdout.write("alice has history already: nothing seeded")
            return
        now = timezone.now()
        person = synthetic.Person(
            name="alice",
            team="engineers",
            zone=user_zone(alice),
            start_hour=8,
            per_day=1.2,
            profiles=tuple(profiles),
            weights=tuple(HABITS[slug] for slug in profiles),
            durations={slug: p.definition.duration_default for slug, p in profiles.items()},
            # make run serves 127.0.0.1: the demo's own browser is her office.
            channel="web",
            office="127.0.0.0/24",
            home="203.0.113.0/24",
        )
        first_day = now - timedelta(days=synthetic.DAYS + 1)
        rng = random.Random(DEMO_SEED)  # noqa: S311  # nosec B311 - a reproducible demo, not a secret
        seeded = 0
        with transaction.atomic():
            for at, fields in synthetic.work_of(rng, person, first_day):
                if at >= now - timedelta(hours=2):
                    continue
                profile = profiles[fields["profile"]]
                seed_one(profile, alice, bob, at, fields)
                seeded += 1
        model = store.retrain(now)
        self.stdout.write(
            f"seeded {seeded} past requests for alice; risk model v{model.pk if model else '-'}"
        )


def seed_one(profile: AccessProfile, alice, approver, at, fields: dict) -> None:
    duration = min(fields["duration"], profile.definition.max_duration)
    decided, activated = at + timedelta(minutes=4), at + timedelta(minutes=5)
    asked = AccessRequest.objects.create(
        profile=profile,
        requester=alice,
        duration=duration,
        reason=DEMO_REASON,
        ticket=fields["ticket"],
        status=AccessRequest.Status.APPROVED,
        source=fields["channel"],
        created_at=at,
        pending_until=at + profile.definition.pending_ttl,
        decided_at=decided,
        network=fields["network"],
        approvals_required=1,
    )
    Approval.objects.create(
        request=asked,
        approver=approver,
        decision=Approval.Decision.APPROVE,
        source=fields["channel"],
        mfa_verified_at=decided,
        mfa_method="totp",
        created_at=decided,
    )
    Grant.objects.create(
        request=asked,
        status=Grant.Status.REVOKED,
        duration=duration,
        created_at=decided,
        activated_at=activated,
        expires_at=activated + duration,
        ended_at=activated + duration,
        end_reason="expired",
    )
