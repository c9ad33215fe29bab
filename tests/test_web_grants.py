"""Grant pages: reveal once to the owner after step-up, relinquish, who sees what."""

import pytest

from accounts.models import StepUp
from audit import trail
from broker import lifecycle
from broker.models import Grant
from lib.providers import PROVIDERS, get_provider
from tests.support.grants import active_grant

pytestmark = pytest.mark.django_db(transaction=True)


def test_alice_reveals_once_after_step_up(client, pg_target, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    client.force_login(people.alice)
    response = client.post(f"/grants/{grant.id}/reveal/")
    assert response.url == f"/mfa/verify/?next=%2Fgrants%2F{grant.id}%2F"  # step-up first

    step_up(people.alice)
    response = client.post(f"/grants/{grant.id}/reveal/")
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "postgresql://airlock_" in page and "psql &#x27;postgresql://" in page
    assert Grant.objects.get(pk=grant.pk).secret is None

    again = client.post(f"/grants/{grant.id}/reveal/", follow=True).content.decode()
    assert "already shown" in again and "postgresql://airlock_" not in again
    detail = client.get(f"/grants/{grant.id}/").content.decode()
    assert "cannot be shown again" in detail

    client.post(f"/grants/{grant.id}/revoke/", {"reason": "relinquished"})
    grant.refresh_from_db()
    assert grant.status == "revoking" and grant.end_reason == "relinquished"
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize(("who", "status"), [("bob", 404), ("charlie", 404), ("admin", 404)])
def test_nobody_else_can_reveal(client, pg_target, people, submit, step_up, who, status):
    grant = active_grant(people, submit, step_up)
    user = getattr(people, who)
    step_up(user)
    client.force_login(user)
    assert client.post(f"/grants/{grant.id}/reveal/").status_code == status
    assert Grant.objects.get(pk=grant.pk).secret is not None
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.admin, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_charlie_can_neither_see_nor_revoke(client, pg_target, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    client.force_login(people.charlie)
    assert client.get(f"/grants/{grant.id}/").status_code == 404
    assert client.post(f"/grants/{grant.id}/revoke/").status_code == 404
    assert Grant.objects.get(pk=grant.pk).status == "active"
    StepUp.objects.all().delete()
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


def test_the_dashboard_counts_down_and_offers_relinquish(
    client, pg_target, people, submit, step_up
):
    grant = active_grant(people, submit, step_up)
    client.force_login(people.alice)
    page = client.get("/").content.decode()
    assert f'data-expires="{grant.expires_at.isoformat()}"'[:40] in page
    assert "Relinquish" in page
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize(
    ("slug", "says"),
    [
        ("test-db", "ends the role&#x27;s open sessions and drops the role"),
        ("vault-token", "revokes the Vault token at once"),
        ("vault-db", "revokes the Vault lease"),
    ],
)
def test_the_grant_page_says_what_revoking_does_at_this_source(
    client, pg_target, vault, people, submit, step_up, slug, says
):
    grant = active_grant(people, submit, step_up, slug=slug)
    for viewer in (people.alice, people.bob):  # the owner and an approver
        client.force_login(viewer)
        page = client.get(f"/grants/{grant.id}/").content.decode()
        assert says in page
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=trail.SYSTEM)
    lifecycle.grant_revoke_execute(grant_id=grant.id)


@pytest.mark.parametrize("kind", sorted(PROVIDERS))
def test_every_provider_says_what_revoking_does(kind):
    note = get_provider(kind).revocation_note
    assert len(note) > 40 and note.endswith(".")
