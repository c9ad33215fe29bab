"""Slack's Web API out of reach: /slack/events still starts and answers what needs
nothing from Slack, says 503 (never 500) for what does, and works again as soon as
Slack is back, with nothing to restart."""

import socket

from audit.models import AuditEvent
from tests.support.people import phone_of
from tests.support.slack_fake import FakeSlack
from tests.support.slack_requests import click, command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_with_slack_out_of_reach_events_get_answers_and_a_clear_503(
    client, slack, settings, submit, people
):
    from integrations.slack.views import bolt_app

    port = _free_port()  # nothing listens there
    settings.SLACK_API_URL = f"http://127.0.0.1:{port}/api/"
    bolt_app.cache_clear()
    # A linked user's command needs nothing from Slack: the app starts and answers.
    status = command(client, "U_ALICE", "status")
    assert status.status_code == 200
    assert status.content.decode() == "No pending requests and no active grants."
    # Opening the approval modal needs Slack: a 503 that says so; nothing changed.
    request = submit(people.alice)
    phone_of(people.bob)
    before = AuditEvent.objects.count()
    refused = click(client, "U_BOB", "approve", str(request.pk))
    assert refused.status_code == 503
    assert refused.json() == {"ok": False, "error": "Slack's Web API cannot be reached; "
                              "try again in a moment"}  # fmt: skip
    assert AuditEvent.objects.count() == before
    # Slack is back at the same address: the next click works.
    back = FakeSlack(port=port)
    try:
        assert click(client, "U_BOB", "approve", str(request.pk)).status_code == 200
        assert len(back.made("views.open")) == 1
    finally:
        back.stop()
