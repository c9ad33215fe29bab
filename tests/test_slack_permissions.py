"""Every Slack entry point by every persona: who may act, and that nobody else
changes anything (the Slack side of the web and API permission matrices).

The entry points are read from `register()`, so a listener added without a row
here fails `test_every_slack_entry_point_has_a_row`.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from broker.models import AccessRequest, Grant, Lock, RiskLabel
from integrations.slack.listeners import register
from integrations.slack.models import SlackIdentity
from tests.support.grants import active_grant
from tests.support.slack_requests import click, command, open_home, submit_view

pytestmark = pytest.mark.django_db(transaction=True)

# "stranger" is a Slack user linked to no one; everyone else is linked.
PERSONAS = ["stranger", "alice", "charlie", "bob", "erin", "dave", "admin"]
# Who may act through each entry point on alice's request or grant (test-db,
# approved by sre: bob). Everyone else is refused and nothing changes.
MAY_ACT = {
    ("command", "^/access"): {"alice"},  # only engineers request test-db
    ("view", "request_modal"): {"alice"},
    ("action", "approve"): {"bob"},  # opens the MFA modal
    ("view", "approve_modal"): {"bob"},
    ("action", "deny"): {"bob"},
    ("view", "deny_modal"): {"bob"},
    ("action", "relinquish"): {"alice", "bob", "admin"},  # the owner, an approver, an admin
    ("action", "extend"): {"alice"},  # opens the extension modal
    ("view", "extend_modal"): {"alice"},
    ("view", "lock_modal"): {"erin"},  # of the security role (as carol, not a persona here)
    ("action", "label_unusual"): {"bob"},  # an approver of test-db who sees the request
    ("action", "label_normal"): {"bob"},
    ("action", "open_web"): set(),  # a link: nothing happens in Airlock
    ("event", "app_home_opened"): set(),  # shows one's own home: nothing changes
}


class Recorder:
    """Stands in for the Bolt app to list what `register` listens to."""

    def __init__(self):
        self.entries: set[tuple[str, str]] = set()

    def __getattr__(self, kind: str):
        def listen(matcher):
            name = matcher.pattern if isinstance(matcher, re.Pattern) else matcher
            self.entries.add((kind, name))
            return lambda listener: listener

        return listen


def test_every_slack_entry_point_has_a_row():
    recorder = Recorder()
    register(recorder)
    assert recorder.entries == set(MAY_ACT)


@pytest.fixture
def linked_everyone(slack, people, step_up):
    for name in ("charlie", "erin", "dave", "admin"):
        SlackIdentity.objects.create(
            user=getattr(people, name), team_id="T1", slack_user_id=f"U_{name.upper()}",
            linked_at=timezone.now(), linked_by="code",
        )  # fmt: skip
    for name in PERSONAS[1:]:
        step_up(getattr(people, name))  # so that MFA is not why anyone is refused
    return slack


def act(client, entry, user: str, request: AccessRequest, grant: Grant):
    kind, name = entry
    on_grant = name in ("relinquish", "extend", "extend_modal")
    target = str(grant.pk if on_grant else request.pk)
    if kind == "command":  # for another profile: alice has a request pending for test-db
        return command(client, user, "vault-token 1h INC-9 from the matrix")
    if kind == "action":
        return click(client, user, name, target, channel=None)
    if kind == "event":
        return open_home(client, user)
    values = {
        "request_modal": {"profile": "vault-token", "duration": "1h", "reason": "x"},
        "approve_modal": {"comment": "ok"},
        "deny_modal": {"reason": "no"},
        "extend_modal": {"duration": "30m", "reason": "more time"},
        "lock_modal": {"reason": "from the matrix", "duration": ""},
    }[name]
    if name == "lock_modal":
        target = str(request.requester_id)  # the modal carries whom to lock
    return submit_view(client, user, name, values, "" if name == "request_modal" else target)


def state(slack) -> tuple:
    """Everything an entry point could change, in Airlock and in Slack's modals."""
    requests = sorted(AccessRequest.objects.values_list("id", "status"))
    grants = sorted(Grant.objects.values_list("id", "status"))
    labels = RiskLabel.objects.count()
    return requests, grants, Lock.objects.count(), labels, len(slack.made("views.open"))


@pytest.mark.parametrize("entry", sorted(MAY_ACT), ids=lambda e: f"{e[0]}:{e[1]}")
def test_each_persona_gets_the_expected_answer(
    client, entry, linked_everyone, people, submit, step_up, pg_target
):
    for persona in PERSONAS:
        Lock.objects.update(ended_at=timezone.now())  # the last persona's, if any
        AccessRequest.objects.filter(status="pending").update(status="cancelled")
        AccessRequest.objects.filter(profile__slug="vault-token").update(status="cancelled")
        grant = active_grant(people, submit, step_up)
        # Past the share of its time after which test-db lets its owner ask for more.
        now = timezone.now()
        Grant.objects.filter(pk=grant.pk).update(
            activated_at=now - timedelta(minutes=8), expires_at=now + timedelta(minutes=2)
        )
        request = submit(people.alice, reason="the matrix's pending request")
        before = state(linked_everyone)
        response = act(client, entry, f"U_{persona.upper()}", request, grant)
        assert response.status_code == 200, (entry, persona, response.content)
        changed = state(linked_everyone) != before
        assert changed == (persona in MAY_ACT[entry]), (entry, persona)
