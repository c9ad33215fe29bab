"""Every secret Airlock issues, for every provider, with all logging on and Slack
connected: found nowhere it should not be (logs, audit events, Slack calls, the
database outside the encrypted column), and the encrypted copy gone once shown."""

import json
import logging

import pytest
from django.db import connection

from broker import lifecycle
from broker.models import Grant
from tests.support.grants import active_grant
from tests.support.people import WEB, current_code, phone_of
from tests.support.slack_requests import deliver_notifications

SECRET_FIELDS = {"password", "token", "secret_access_key", "session_token"}


def database_text() -> str:
    """Every row of every table as JSON, the grant's encrypted column left out."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
            rows.extend(
                json.dumps({k: v for k, v in json.loads(r[0]).items() if k != "secret"})
                for r in cursor.fetchall()
            )
    return "\n".join(rows)


@pytest.mark.parametrize("slug", ["test-db", "vault-token", "vault-db", "aws-reader"])
def test_no_secret_is_left_anywhere(
    slug, api, people, submit, step_up, pg_target, vault, aws, slack, caplog
):
    caplog.set_level(logging.DEBUG)
    grant = active_grant(people, submit, step_up, slug=slug, duration="20m")
    response = api(people.alice).post(
        f"/api/v1/grants/{grant.pk}/reveal/",
        {"otp": current_code(phone_of(people.alice), steps_ahead=1)},
        format="json",
    )
    assert response.status_code == 200, response.content
    credential = response.json()["credential"]
    secrets = [value for key, value in credential.items() if key in SECRET_FIELDS]
    assert secrets, credential
    assert Grant.objects.get(pk=grant.pk).secret is None  # wiped once shown
    lifecycle.grant_revoke(grant_id=grant.pk, actor=people.alice, info=WEB)
    lifecycle.grant_revoke_execute(grant_id=grant.pk)
    deliver_notifications()

    places = {
        "logs": caplog.text,
        "slack": json.dumps(slack.calls),
        "database": database_text(),
    }
    for secret in secrets:
        for place, text in places.items():
            assert secret not in text, f"a {slug} secret was found in the {place}"
    assert "postgresql://" not in places["logs"]
