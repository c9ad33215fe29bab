"""The access report: every grant that gave access in a range, with approvers
and their MFA, and how it ended."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from broker import lifecycle
from broker.models import Grant
from tests.support.grants import active_grant
from tests.support.people import WEB

pytestmark = pytest.mark.django_db(transaction=True)


def report(capsys, *args) -> str:
    call_command("access_report", *args)
    return capsys.readouterr().out


def test_grants_with_approvers_mfa_and_how_they_ended(pg_target, people, submit, step_up, capsys):
    revoked = active_grant(people, submit, step_up, duration="30m")
    lifecycle.grant_revoke(grant_id=revoked.id, actor=people.bob, reason="incident over", info=WEB)
    lifecycle.grant_revoke_execute(grant_id=revoked.id)
    expired = active_grant(people, submit, step_up, duration="10m")
    Grant.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    lifecycle.sweep()
    never = submit(people.alice, slug="other-db")  # pending: gave no access

    rows = {r["grant"]: r for r in csv.DictReader(io.StringIO(report(capsys)))}
    assert set(rows) == {str(revoked.id), str(expired.id)}
    first = rows[str(revoked.id)]
    assert (first["requester"], first["profile"], first["reason"]) == (
        "alice",
        "test-db",
        "investigating INC-1",
    )
    assert first["approvers"].startswith("bob (totp ")
    assert first["ended_how"] == "revoked: incident over" and first["ended_by"] == "bob"
    assert rows[str(expired.id)]["ended_how"] == "expired"
    assert str(never.id) not in report(capsys)

    data = json.loads(report(capsys, "--format", "json"))
    assert {r["grant"] for r in data} == set(rows) and data[0]["approvers"][0].startswith("bob")


def test_the_range_selects_by_overlap(pg_target, people, submit, step_up, capsys):
    grant = active_grant(people, submit, step_up)
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert str(grant.id) not in report(capsys, "--until", yesterday)
    assert str(grant.id) in report(capsys, "--since", yesterday, "--until", tomorrow)
    assert str(grant.id) in report(capsys, "--since", tomorrow)  # still active then
    lifecycle.grant_revoke(grant_id=grant.id, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.id)
    assert str(grant.id) not in report(capsys, "--since", tomorrow)


def test_bad_dates_are_refused(db):
    with pytest.raises(CommandError, match="not a date"):
        call_command("access_report", "--since", "Q3")
