"""aws.sts against a moto server with IAM enforced.

moto checks the role's policies for the session's calls, so the credential is
proven to work and to be refused after the revoke policy. moto does not
evaluate `aws:TokenIssueTime` (its deny applies to every session of the role
there), so the cutoff itself is checked below as plain logic.
"""

import http.server
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from broker import lifecycle
from broker.catalog.load import CatalogError, parse_catalog
from broker.models import Grant
from integrations.aws.provider import (
    REVOKE_POLICY_NAME,
    AwsStsProvider,
    console_signin_url,
    cutoff_of,
    revoke_cutoff,
    revoke_policy_document,
)
from integrations.aws.sandbox import ROLE, ROLE_ARN
from lib.providers import GrantContext, ProviderError, get_provider
from tests.support.grants import credential_works
from tests.support.people import WEB

pytestmark = pytest.mark.django_db


def context(seconds: float = 1800, config=None) -> GrantContext:
    return GrantContext(
        grant_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        profile_id="aws-reader",
        username="alice@example.com",
        config=config or {"role_arn": ROLE_ARN},
        expires_at=timezone.now() + timedelta(seconds=seconds),
    )


def test_the_session_reads_what_the_role_allows_then_is_refused_after_revoke(aws):
    provider = AwsStsProvider()
    issued = provider.grant(context())
    assert credential_works(issued.credential, None, None)
    s3 = aws.client(
        "s3",
        aws_access_key_id=issued.credential["access_key_id"],
        aws_secret_access_key=issued.credential["secret_access_key"],
        aws_session_token=issued.credential["session_token"],
    )
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.create_bucket(Bucket="not-allowed")  # least privilege: only the role's actions
    assert issued.expires_at <= timezone.now() + timedelta(seconds=1800)
    assert "secret" not in json.dumps(issued.handle).lower()
    assert provider.check(issued.handle)

    provider.revoke(issued.handle)
    assert not credential_works(issued.credential, None, None)
    assert not provider.check(issued.handle)
    document = aws.client("iam").get_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY_NAME)[
        "PolicyDocument"
    ]
    cutoff = cutoff_of(document if isinstance(document, dict) else json.loads(document))
    assert cutoff > datetime.fromisoformat(issued.handle["issued_at"])


def test_a_session_longer_than_the_role_allows_is_refused(aws):
    with pytest.raises(ProviderError, match="at most 3600 s") as caught:
        AwsStsProvider().grant(context(seconds=7200))
    assert caught.value.permanent


def test_an_unknown_role_is_permanent(aws):
    config = {"role_arn": "arn:aws:iam::123456789012:role/nope"}
    with pytest.raises(ProviderError) as caught:
        AwsStsProvider().grant(context(config=config))
    assert caught.value.permanent and "NoSuchEntity" in str(caught.value)


def test_requests_shorter_than_fifteen_minutes_are_refused(people, submit, aws):
    with pytest.raises(lifecycle.InvalidRequest) as caught:
        submit(people.alice, slug="aws-reader", duration="10m")
    assert "at least 16m for aws.sts" in caught.value.fields["duration"]
    request = submit(people.alice, slug="aws-reader", duration="16m")  # the shortest that works
    assert request.duration == timedelta(minutes=16)


def aws_catalog(max_duration: str) -> str:
    return f"""
version: 1
profiles:
  - id: aws
    title: AWS
    provider: {{kind: aws.sts, config: {{role_arn: "{ROLE_ARN}"}}}}
    requesters: {{users: [alice]}}
    approvers: {{users: [bob]}}
    max_duration: {max_duration}
"""


def test_check_catalog_refuses_a_profile_that_sts_cannot_bound():
    with pytest.raises(CatalogError) as caught:
        parse_catalog(aws_catalog("5m").encode())
    assert "profile 'aws': max_duration: aws.sts needs at least 16m" in caught.value.errors


def test_the_cutoff_covers_sessions_issued_in_the_same_second():
    now = datetime(2026, 11, 28, 12, 0, 0, 900_000, tzinfo=UTC)
    cutoff = revoke_cutoff(now)
    assert cutoff == datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)
    issued_same_second = now.replace(microsecond=100_000)  # TokenIssueTime 12:00:00
    assert issued_same_second.replace(microsecond=0) < cutoff
    statement = revoke_policy_document(cutoff)["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    assert statement["Condition"] == {
        "DateLessThan": {"aws:TokenIssueTime": "2026-11-28T12:00:01Z"}
    }
    assert cutoff_of(revoke_policy_document(cutoff)) == cutoff


def test_a_second_revoke_never_moves_the_cutoff_back(aws):
    provider = AwsStsProvider()
    first, second = provider.grant(context()), provider.grant(context())
    provider.revoke(second.handle)
    iam = aws.client("iam")
    later = cutoff_of(
        iam.get_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    )
    provider.revoke(first.handle)
    again = cutoff_of(
        iam.get_role_policy(RoleName=ROLE, PolicyName=REVOKE_POLICY_NAME)["PolicyDocument"]
    )
    assert again >= later


class FakeFederation(http.server.BaseHTTPRequestHandler):
    """AWS's federation endpoint cannot be reached from here; this answers like it."""

    def do_GET(self):
        body = json.dumps({"SigninToken": "token-from-federation"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
        type(self).seen.append(self.path)

    def log_message(self, *args):
        pass


def test_console_sign_in_link(aws, monkeypatch, settings):
    FakeFederation.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeFederation)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/federation"
    issued = AwsStsProvider().grant(context())
    try:
        url = console_signin_url(issued.credential, endpoint=endpoint)
        assert url.startswith(endpoint + "?Action=login")
        assert "SigninToken=token-from-federation" in url
        assert "Action=getSigninToken" in FakeFederation.seen[0]
        settings.AWS_FEDERATION_ENDPOINT = endpoint
        lines = dict(get_provider("aws.sts").present(issued.credential))
        assert "export AWS_SESSION_TOKEN=" in lines["Shell"]
        settings.AWS_FEDERATION_ENDPOINT = "http://127.0.0.1:1/federation"
        lines = dict(get_provider("aws.sts").present(issued.credential))
        link = lines["AWS console sign-in link (valid 15 minutes)"]
        assert link.startswith("unavailable")
    finally:
        server.shutdown()


def test_the_shortest_grant_activates(pg_target, aws, people, submit, step_up):
    """16 minutes leaves room for the moment activation takes after the clock starts."""
    request = submit(people.alice, slug="aws-reader", duration="16m")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=request.id, approver=people.bob, info=WEB)
    grant = lifecycle.grant_activate(grant_id=Grant.objects.get(request=request).id)
    assert grant.status == "active", grant.last_error


def test_check_catalog_online_compares_with_the_role(aws, tmp_path, capsys):
    catalog = tmp_path / "aws.yaml"
    catalog.write_text(aws_catalog("1h"))
    call_command("check_catalog", str(catalog), "--online")
    assert "OK and at the sources" in capsys.readouterr().out
    catalog.write_text(aws_catalog("2h"))
    call_command("check_catalog", str(catalog))  # offline it cannot know
    with pytest.raises(CommandError, match="at the sources"):
        call_command("check_catalog", str(catalog), "--online")
    assert "longer than the role's MaxSessionDuration (3600 s)" in capsys.readouterr().err
