"""Approvers and others act from where they land: the dashboard shows what waits
for an approver, oldest first, decided from the row (after MFA step-up); the menu
counts it, and hides what a person cannot use."""

import re

from broker.models import AccessRequest


def menu(page: str) -> str:
    return re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S).group(1)


def test_bob_sees_what_waits_for_him_oldest_first(client, people, submit, step_up):
    first = submit(people.alice, reason="first one")
    second = submit(people.alice, slug="vault-token", reason="second one")
    client.force_login(people.bob)
    page = client.get("/").content.decode()
    assert "2 waiting for you" in page
    assert page.index("first one") < page.index("second one")
    assert 'id="approvals-count" title="2 waiting for you">2</span>' in menu(page)

    step_up(people.bob)
    client.post(f"/requests/{first.id}/decide/", {"decision": "approve"})
    client.post(f"/requests/{second.id}/decide/", {"decision": "deny", "reason": "no"})
    assert AccessRequest.objects.get(pk=first.pk).status == AccessRequest.Status.APPROVED
    assert AccessRequest.objects.get(pk=second.pk).status == AccessRequest.Status.DENIED
    page = client.get("/").content.decode()
    assert "waiting for you" not in page and "approvals-count" not in page


def test_queue_rows_decide_after_a_step_up(client, people, submit):
    pending = submit(people.alice)
    client.force_login(people.bob)
    queue = client.get("/approvals/").content.decode()
    assert f'action="/requests/{pending.id}/decide/"' in queue
    assert 'name="reason" required' in queue  # a denial says why
    answer = client.post(f"/requests/{pending.id}/decide/", {"decision": "approve"})
    assert answer.url.startswith("/mfa/verify/")  # no MFA yet: nothing decided
    assert AccessRequest.objects.get(pk=pending.pk).status == AccessRequest.Status.PENDING


def test_alice_sees_no_approver_menu(client, people, catalog):
    client.force_login(people.alice)
    items = menu(client.get("/").content.decode())
    assert "Approvals" not in items and "Reviews" not in items and "Audit log" not in items
    assert "Request access" in items


def test_an_auditor_sees_reviews_and_the_audit_log(client, people, catalog):
    client.force_login(people.dave)
    items = menu(client.get("/").content.decode())
    assert "Reviews" in items and "Audit log" in items and "Approvals" not in items


# Profiles bob approves and alice may request (one pending request each).
SIX = ["test-db", "broken-db", "vault-token", "vault-db", "aws-reader", "test-db-critical"]


def test_more_than_fit_on_the_dashboard_link_to_the_queue(client, people, submit):
    for number, slug in enumerate(SIX):
        submit(people.alice, slug=slug, reason=f"number {number}", ticket="INC-1")
    client.force_login(people.bob)
    page = client.get("/").content.decode()
    assert "6 waiting for you" in page and "All 6 in the queue" in page
    assert "number 4" in page and "number 5" not in page
