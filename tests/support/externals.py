"""A third party under alice's sponsorship, as the tests need one."""

from datetime import timedelta

from django.utils import timezone

from audit import trail
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.models import AccessProfile
from broker.policy.externals import invitation_digest
from tests.support.catalogs import EXTERNAL_CATALOG
from tests.support.people import WEB

PASSWORD = "a long passphrase for zoe"


def open_test_db_to_externals() -> None:
    lifecycle.catalog_sync(catalog=parse_catalog(EXTERNAL_CATALOG.encode()), info=trail.SYSTEM)


def invite_zoe(people, step_up, *, days: int = 60, accept: bool = True):
    """zoe of Acme, invited by alice for test-db, contract ending in `days`."""
    step_up(people.alice)
    access, token = lifecycle.external_invite(
        sponsor=people.alice, username="zoe", email="zoe@acme.example", company="Acme",
        contract_ends_at=timezone.now() + timedelta(days=days),
        profiles=[AccessProfile.objects.get(slug="test-db")], info=WEB,
    )  # fmt: skip
    if accept:
        digest = invitation_digest(token)
        lifecycle.external_accept(invitation_sha256=digest, password=PASSWORD, info=WEB)
        access.refresh_from_db()
    return access, token
