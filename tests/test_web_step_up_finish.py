"""Step-up finishes what the person started: after verifying, the page they come
back to says plainly that nothing was done yet and offers the same action, with
what they typed, one click away; that click completes it. An MFA typo keeps the
key the phone already scanned."""

import re

import pytest

from accounts.models import Authenticator, StepUp
from broker.models import AccessRequest, Grant
from tests.support.grants import active_grant
from tests.support.people import current_code


def verify(client, user, next_url: str):
    device = Authenticator.objects.get(user=user, confirmed=True)
    Authenticator.objects.filter(pk=device.pk).update(last_t=-1)
    return client.post("/mfa/verify/", {"code": current_code(device), "next": next_url})


def test_bob_approves_in_one_step_up(client, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    StepUp.objects.all().delete()
    client.force_login(people.bob)
    detail = f"/requests/{request.id}/"

    started = client.post(f"{detail}decide/", {"decision": "approve", "comment": "ok by me"})
    assert started.url.startswith("/mfa/verify/")
    verified = verify(client, people.bob, detail)
    assert verified.status_code == 302 and verified.url == detail

    page = client.get(detail).content.decode()
    assert "Code verified. Nothing was done yet: confirm below." in page
    assert "nothing is decided yet: press <strong>Approve</strong>" in page
    assert re.search(r'<button type="submit" autofocus>Approve</button>', page)
    assert 'value="ok by me"' in page
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING  # only the confirmation decides

    client.post(f"{detail}decide/", {"decision": "approve", "comment": "ok by me"})
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.APPROVED
    assert "nothing is decided yet" not in client.get(detail).content.decode()


def test_a_denial_keeps_its_reason_through_the_step_up(client, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    StepUp.objects.all().delete()
    client.force_login(people.bob)
    detail = f"/requests/{request.id}/"
    client.post(f"{detail}decide/", {"decision": "deny", "reason": "not during the freeze"})
    verify(client, people.bob, detail)
    page = client.get(detail).content.decode()
    assert "press <strong>Deny</strong>" in page and "not during the freeze</textarea>" in page
    assert re.search(r'<button class="danger" type="submit" autofocus>Deny</button>', page)


@pytest.mark.django_db(transaction=True)
def test_a_reveal_is_one_click_after_the_step_up(client, pg_target, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    step_up(people.alice)
    StepUp.objects.all().delete()
    client.force_login(people.alice)
    page_url = f"/grants/{grant.id}/"
    started = client.post(f"{page_url}reveal/", {"intent": "reveal"})
    assert started.url.startswith("/mfa/verify/")
    verify(client, people.alice, page_url)
    page = client.get(page_url).content.decode()
    assert "press <strong>Show credential</strong> to see it" in page
    assert Grant.objects.get(pk=grant.pk).revealed_at is None


def test_a_mistyped_enrolment_code_keeps_the_scanned_key(client, people):
    client.force_login(people.bob)
    first = client.get("/mfa/enrol/")
    device = Authenticator.objects.get(user=people.bob, confirmed=False)
    key = re.search(r'<code id="totp-key">(\w+)</code>', first.content.decode()).group(1)

    typo = client.post("/mfa/enrol/", {"code": f"{(int(current_code(device)) + 1) % 10**6:06d}"})
    assert typo.status_code == 400
    assert "does not match the key shown here" in typo.content.decode()
    assert key in typo.content.decode()  # the same key, not a new one
    assert key in client.get("/mfa/enrol/").content.decode()  # also when the page is reloaded

    client.post("/mfa/enrol/", {"code": current_code(device)})
    assert Authenticator.objects.get(pk=device.pk).confirmed


def test_starting_again_gives_a_new_key(client, people):
    client.force_login(people.bob)
    client.get("/mfa/enrol/")
    first = Authenticator.objects.get(user=people.bob, confirmed=False)
    client.post("/mfa/enrol/", {"restart": "1"})
    second = Authenticator.objects.get(user=people.bob, confirmed=False)
    assert second.pk != first.pk
