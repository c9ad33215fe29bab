from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from broker.models import Grant


class Command(BaseCommand):
    help = (
        "Print the serials of SSH certificates revoked before their own expiry, as a "
        "KRL specification: ssh-keygen -k -f revoked.krl -s ca.pub THIS_OUTPUT"
    )

    def handle(self, *args, **options):
        revoked = Grant.objects.filter(
            request__profile__provider_kind="vault.ssh", status=Grant.Status.REVOKED
        ).select_related("request__requester")
        now = timezone.now()
        for grant in revoked.exclude(end_reason="expired").order_by("ended_at"):
            valid_before = parse_datetime(grant.handle.get("valid_before", ""))
            if valid_before and valid_before > now:
                self.stdout.write(
                    f"# grant {grant.pk} of {grant.request.requester}, valid until "
                    f"{valid_before:%Y-%m-%d %H:%M:%S} UTC"
                )
                self.stdout.write(f"serial: {grant.handle['serial']}")
