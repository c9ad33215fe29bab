"""Fifty decisions on one request at once, through the API, the web and Slack:
exactly one outcome, one audit event per accepted decision, and every loser
told clearly (API 409, web message, Slack modal error). Real row locks: each
thread has its own PostgreSQL connection."""

import threading
from collections import Counter

import pytest
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import mfa_backup_codes_regenerate
from accounts.tokens import token_create
from audit.models import AuditEvent
from broker.models import Approval
from tests.support.people import WEB
from tests.support.slack_requests import submit_view

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_fifty_decisions_through_three_channels_have_one_outcome(people, slack, submit, step_up):
    request = submit(people.alice)
    for approver in (people.bob, people.carol):
        step_up(approver)  # for the web and Slack; the API takes a code each time
    codes = {
        user.username: mfa_backup_codes_regenerate(user=user, info=WEB)
        for user in (people.bob, people.carol)
    }
    tokens = {
        user.username: token_create(user=user, name="race", days=1, info=WEB)[1]
        for user in (people.alice, people.bob, people.carol)
    }
    url = f"/api/v1/requests/{request.pk}"

    def api_approve(user, code):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[user]}")
        return ("api", client.post(f"{url}/approve/", {"otp": code}, format="json"))

    def api_cancel():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['alice']}")
        return ("api", client.post(f"{url}/cancel/", {}, format="json"))

    def web_deny(user):
        client = Client()
        client.force_login(user)
        response = client.post(f"/requests/{request.pk}/decide/",
                               {"decision": "deny", "reason": "no"}, follow=True)  # fmt: skip
        return ("web", response)

    def slack_approve(user, n):
        client = Client()
        return ("slack", submit_view(client, user, "approve_modal", {"comment": f"ok {n}"},
                                     str(request.pk)))  # fmt: skip

    calls = []
    for i in range(10):
        calls.append(lambda i=i: api_approve("bob", codes["bob"][i]))
        calls.append(lambda i=i: api_approve("carol", codes["carol"][i]))
    for i in range(10):
        calls.append(lambda i=i: web_deny(people.bob if i % 2 else people.carol))
        calls.append(lambda i=i: slack_approve("U_BOB" if i % 2 else "U_CAROL", i))
        calls.append(api_cancel)
    assert len(calls) == 50
    results = at_once(calls)

    request.refresh_from_db()
    assert request.status in ("approved", "denied", "cancelled")
    events = list(
        AuditEvent.objects.filter(target_id=str(request.pk)).values_list("action", flat=True)
    )
    closing = [a for a in events if a in ("request.approved", "request.denied",
                                          "request.cancelled")]  # fmt: skip
    assert len(closing) == 1, events
    decisions = Approval.objects.filter(request=request).count()
    assert decisions == events.count("request.decision.approve") + events.count(
        "request.decision.deny"
    )
    assert decisions <= 1  # one approval closes it; a denial closes it

    outcome = Counter()
    for channel, response in results:
        if channel == "api":
            assert response.status_code in (200, 409), response.content
            if response.status_code == 409:
                assert response.json()["error"]["code"] == "conflict"
            outcome[f"api {response.status_code}"] += 1
        elif channel == "web":
            assert response.status_code == 200
            page = response.content.decode()
            won = "Denied." in page
            assert won or "already" in page, page[:500]
            outcome[f"web {'won' if won else 'told'}"] += 1
        else:
            assert response.status_code == 200
            told = response.content != b""
            if told:
                assert "already" in response.json()["errors"]["comment"]
            outcome[f"slack {'told' if told else 'won'}"] += 1
    winners = outcome["api 200"] + outcome["web won"] + outcome["slack won"]
    assert winners == 1, outcome
