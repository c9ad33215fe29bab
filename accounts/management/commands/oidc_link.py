"""Bind a single sign-on identity to an account by hand: for the accounts sign-in
never binds by itself (staff and superusers), or whose email at the IdP differs."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from accounts.oidc import oidc_identity_link
from audit import trail


class Command(BaseCommand):
    help = "Bind the IdP identity SUBJECT (its `sub`) to the Airlock account USERNAME, audited."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("subject", help="the `sub` claim the IdP gives this person")
        parser.add_argument("--issuer", help="the IdP's `iss` (default: OIDC_OP_ISSUER)")

    def handle(self, *args, username: str, subject: str, issuer: str | None, **options):
        issuer = issuer or getattr(settings, "OIDC_OP_ISSUER", "")
        if not issuer:
            raise CommandError("single sign-on is off: set OIDC_OP_ISSUER, or pass --issuer")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"there is no account named {username}")
        try:
            with transaction.atomic():
                oidc_identity_link(
                    user=user, issuer=issuer, subject=subject, how="admin", info=trail.SYSTEM
                )
        except IntegrityError:
            raise CommandError(f"{subject} at {issuer} is already bound to an account") from None
        self.stdout.write(f"{username} now signs in as {subject} at {issuer}.")
