from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.models import Source
from broker.models import AccessProfile
from broker.policy import risk, rules
from broker.policy.requesters import can_request
from lib.durations import format_duration, parse_duration


class Command(BaseCommand):
    help = "Show how a request would be decided (risk, rules, approvers) without submitting it."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--profile", required=True)
        parser.add_argument("--duration", help="e.g. 2h (default: the profile's default)")
        parser.add_argument("--ticket", default="")
        parser.add_argument("--source", choices=Source.values, default=Source.WEB)
        parser.add_argument("--ip", help="the address it would come from (web/API)")

    def handle(self, *args, user, profile, duration=None, ticket="", source="web", ip=None,
               **options):  # fmt: skip
        requester = get_user_model().objects.filter(username=user).first()
        if requester is None:
            raise CommandError(f"no user {user!r}")
        found = AccessProfile.objects.filter(slug=profile, enabled=True).first()
        if found is None:
            raise CommandError(f"no enabled profile {profile!r}")
        try:
            length = parse_duration(duration) if duration else found.definition.duration_default
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not can_request(requester, found):
            self.stdout.write(f"{user} may not request {profile}: refused before any rule.")
            return
        now = timezone.now()
        spec = risk.risk_spec()
        facts = risk.facts_for(user=requester, profile=found, duration=length, source=source,
                               ip=ip, now=now, spec=spec, ticket=ticket)  # fmt: skip
        assessment = risk.assess(facts, spec)
        outcome = rules.evaluate(
            found.definition,
            requester=requester,
            assessment=assessment,
            ticket=ticket,
            local_time=facts.local_time,
        )
        self.stdout.write(f"{user} asks for {profile} for {format_duration(length)}")
        self.stdout.write(f"risk {assessment.score}")
        for factor in assessment.factors:
            self.stdout.write(f"  +{factor.points:<3} {factor.name}: {factor.why}")
        self.stdout.write("rules")
        for step in outcome.trace[1:]:
            mark = "yes" if step["applies"] else "no "
            self.stdout.write(f"  [{mark}] {step['rule']}: {step['why']}")
        verdict = {
            rules.DENY: f"DENIED by policy: {outcome.reason}",
            rules.AUTO_APPROVE: f"APPROVED by policy ({outcome.reason})",
            rules.ASK: f"ASKED of approvers: {outcome.approvals_required} approval(s) needed",
        }[outcome.action]
        self.stdout.write(f"decision: {verdict}")
