"""Helpers to bring a grant to a given state through the real lifecycle."""

from broker import lifecycle
from broker.models import Grant
from tests.conftest import WEB


def active_grant(people, submit, step_up, duration: str = "10m", slug: str = "test-db") -> Grant:
    """alice asks, bob approves, the activation runs here (no worker needed)."""
    request = submit(people.alice, duration=duration, slug=slug)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    grant = Grant.objects.get(request=request)
    lifecycle.grant_activate(grant_id=grant.id)
    grant.refresh_from_db()
    return grant


def credential_dsn(c: dict) -> str:
    return f"postgresql://{c['user']}:{c['password']}@{c['host']}:{c['port']}/{c['dbname']}"
