"""Approvers mark a request unusual or normal, on the web or in Slack: on record,
one word per person, never by the requester, and ground truth for the evaluation."""

import json

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from broker.models import AccessRequest, RiskLabel
from integrations.slack.blocks import request_message
from tests.support.slack_requests import click


def label(client, user, access_request, word):
    client.force_login(user)
    return client.post(f"/requests/{access_request.pk}/label/", {"label": word})


def test_an_approver_marks_a_request_on_the_web_and_can_change_their_mind(client, people, submit):
    asked = submit(people.alice)
    page = client.get(f"/requests/{asked.pk}/")  # anonymous: nothing offered
    assert page.status_code == 302
    client.force_login(people.bob)
    assert "This was unusual" in client.get(f"/requests/{asked.pk}/").content.decode()

    assert label(client, people.bob, asked, "unusual").status_code == 302
    assert label(client, people.bob, asked, "normal").status_code == 302

    assert list(RiskLabel.objects.values_list("labelled_by__username", "label")) == [
        ("bob", "normal")
    ]
    events = AuditEvent.objects.filter(action="request.labelled", target_id=str(asked.pk))
    assert [e.data["label"] for e in events.order_by("seq")] == ["unusual", "normal"]
    assert {e.actor for e in events} == {"bob"} and {e.source for e in events} == {"web"}
    page = client.get(f"/requests/{asked.pk}/").content.decode()
    assert "You marked it <strong>normal</strong>" in page


@pytest.mark.parametrize("who", ["alice", "dave"])
def test_the_requester_and_onlookers_cannot_mark_it(client, people, submit, who):
    asked = submit(people.alice)
    client.force_login(getattr(people, who))
    assert "This was unusual" not in client.get(f"/requests/{asked.pk}/").content.decode()
    assert label(client, getattr(people, who), asked, "normal").status_code == 403
    assert not RiskLabel.objects.exists()
    assert not AuditEvent.objects.filter(action="request.labelled").exists()


@pytest.mark.parametrize("word", ["", "suspicious", "x" * 5000])
def test_a_word_other_than_unusual_or_normal_changes_nothing(client, people, submit, word):
    asked = submit(people.alice)
    response = label(client, people.bob, asked, word)
    assert response.status_code in (302, 400)
    assert not RiskLabel.objects.exists()


def test_slack_offers_the_buttons_and_records_the_click(client, slack, people, submit):
    asked = submit(people.alice)
    _, blocks = request_message(AccessRequest.objects.get(pk=asked.pk))
    offered = {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert {"label_unusual", "label_normal"} <= offered

    assert click(client, "U_BOB", "label_unusual", str(asked.pk)).status_code == 200
    assert click(client, "U_ALICE", "label_normal", str(asked.pk)).status_code == 200

    assert list(RiskLabel.objects.values_list("labelled_by__username", "label")) == [
        ("bob", "unusual")
    ]
    event = AuditEvent.objects.get(action="request.labelled")
    assert event.source == "slack" and event.actor == "bob"
    told = [m["text"] for m in slack.made("chat.postEphemeral")]
    assert "Marked unusual: the model learns from it." in told
    assert any(t.startswith("Not marked: someone else must judge your own request") for t in told)


def test_labels_are_the_ground_truth_of_the_evaluation(client, people, submit, capsys):
    call_command("evaluate_risk", "--labels")
    assert "an AUC needs requests of both kinds" in capsys.readouterr().out
    quiet, loud = submit(people.alice), submit(people.alice, slug="vault-token")
    AccessRequest.objects.filter(pk=loud.pk).update(risk_score=80, unusual_score=99)
    label(client, people.bob, quiet, "normal")
    label(client, people.bob, loud, "unusual")
    call_command("evaluate_risk", "--labels")
    out = capsys.readouterr().out
    assert "1 request(s) marked unusual, 1 marked normal" in out
    assert "model            AUC 1.000" in out


def test_the_requester_sees_the_score_but_not_the_models_reasons(client, people, submit, api):
    asked = submit(people.alice)
    reasons = "unusual for alice (97/100): 03:10 (usually 09:00-18:00)"
    AccessRequest.objects.filter(pk=asked.pk).update(
        unusual_score=97, risk_factors=[{"name": "unusual", "points": 21, "why": reasons}]
    )
    client.force_login(people.alice)
    own = client.get(f"/requests/{asked.pk}/").content.decode()
    assert "usually 09:00" not in own and "its reasons are for approvers" in own
    client.force_login(people.bob)
    assert "03:10 (usually 09:00-18:00)" in client.get(f"/requests/{asked.pk}/").content.decode()

    body = api(people.alice).get(f"/api/v1/requests/{asked.pk}/").json()
    assert body["unusual_score"] == 97
    assert body["risk_factors"][0]["why"].startswith("unusual for the learned model")
    body = api(people.bob).get(f"/api/v1/requests/{asked.pk}/").json()
    assert body["risk_factors"][0]["why"] == reasons


def test_the_models_reasons_reach_the_approvers_queue_and_slack(client, people, submit):
    asked = submit(people.alice)
    reasons = "unusual for alice (97/100): 03:10 (usually 09:00-18:00)"
    AccessRequest.objects.filter(pk=asked.pk).update(
        unusual_score=97, risk_factors=[{"name": "unusual", "points": 21, "why": reasons}]
    )
    client.force_login(people.bob)
    assert reasons in client.get("/approvals/").content.decode()
    _, blocks = request_message(AccessRequest.objects.get(pk=asked.pk))
    assert reasons in json.dumps(blocks)
