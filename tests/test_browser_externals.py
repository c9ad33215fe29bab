"""A third party in a real Chromium, from invitation to contract end: alice
invites zoe of Acme for test-db; zoe sets a password, must enrol MFA before
anything else, asks; alice (her sponsor) approves first, then bob (test-db's
approver); at the contract's end her account is disabled and her session ends.
axe-core finds no serious problem on the pages a third party and a sponsor see."""

from datetime import date, timedelta

import pytest

from broker import lifecycle
from broker.models import AccessRequest, ExternalAccess
from tests.support.browser import SHOTS, accessibility_problems, enrol, sign_in
from tests.support.externals import PASSWORD, open_test_db_to_externals

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_third_party_from_invitation_to_contract_end_in_chromium(
    browser, live_server, people, catalog
):
    open_test_db_to_externals()
    base = live_server.url
    alice = browser.new_context().new_page()
    zoe = browser.new_context().new_page()
    bob = browser.new_context().new_page()

    sign_in(alice, base, "alice")
    enrol(alice, base)  # a fresh verification too
    alice.goto(f"{base}/")
    alice.get_by_role("link", name="External accounts").click()
    alice.get_by_label("Their username").fill("zoe")
    alice.get_by_label("Company").fill("Acme")
    alice.get_by_label("Contract ends (UTC)").fill((date.today() + timedelta(days=60)).isoformat())
    alice.get_by_label("test-db: Test database, read-only").check()
    problems = accessibility_problems(alice)
    alice.get_by_role("button", name="Invite").click()
    link = alice.locator("#invitation-link").inner_text()
    problems += accessibility_problems(alice)

    zoe.goto(link)  # airlock.js posts the code after "#": no server ever saw it
    zoe.wait_for_url(f"{base}/externals/accept/continue/")
    zoe.get_by_label("Choose a password").fill(PASSWORD)
    zoe.get_by_label("The password again").fill(PASSWORD)
    problems += accessibility_problems(zoe)
    zoe.get_by_role("button", name="Set my password").click()
    zoe.wait_for_url(f"{base}/mfa/enrol/")
    zoe.goto(f"{base}/requests/new/")  # nothing before MFA
    zoe.wait_for_url(f"{base}/mfa/enrol/")
    enrol(zoe, base)
    zoe.goto(f"{base}/")
    assert zoe.get_by_role("link", name="API tokens").count() == 0
    zoe.get_by_role("link", name="Request access").first.click()
    zoe.get_by_label("Access profile").select_option("test-db")
    zoe.get_by_label("For how long").fill("30m")
    zoe.get_by_label("Reason").fill("Acme's quarterly maintenance")
    zoe.get_by_role("button", name="Submit request").click()
    zoe.get_by_text("Request submitted").wait_for()
    problems += accessibility_problems(zoe)
    zoe.screenshot(path=SHOTS / "external-request.png", full_page=True)

    # Her sponsor first: on alice's queue, marked external.
    alice.goto(f"{base}/approvals/")
    alice.get_by_text("zoe (external, Acme)").first.click()
    alice.get_by_role("button", name="Approve").click()
    alice.get_by_text("Approved.").wait_for()
    asked = AccessRequest.objects.get(requester__username="zoe")
    assert asked.status == "pending" and asked.decisions.count() == 1

    sign_in(bob, base, "bob")
    enrol(bob, base)
    bob.goto(f"{base}/requests/{asked.pk}/")
    bob.get_by_role("button", name="Approve").click()
    bob.get_by_text("Approved.").wait_for()
    assert AccessRequest.objects.get(pk=asked.pk).status == "approved"

    # The contract ends: the account is disabled and her session with it.
    access = ExternalAccess.objects.get(user__username="zoe")
    lifecycle.externals_tick(now=access.contract_ends_at + timedelta(minutes=1))
    zoe.goto(f"{base}/")
    zoe.wait_for_url(f"{base}/login/?next=/")
    assert problems == []
