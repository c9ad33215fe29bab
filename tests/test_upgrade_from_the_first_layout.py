"""A database made by the first layout (the migrations on main before issue #15:
broker 0007, accounts 0004, approvals 0003, slack 0001) migrates forward to
today's, models moved to other apps included, and loses nothing: every row is
still there under its new model, the audit chain still verifies, and what the
new columns say is filled from what the trail said."""

import json
import os
import secrets
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from tests.support.chaos import airlock_database_url

FIRST_LAYOUT = [
    ("broker", "0007_orphan_sightings"),
    ("accounts", "0004_risk_policy"),
    ("approvals", "0003_risk_policy"),
    ("slack", "0001_slack"),
    ("otp_totp", "0003_add_timestamps"),
]

# Rows as the first layout's models held them, written through its historical models.
SEED = """
import json
from datetime import timedelta
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from audit.trail import GENESIS_HASH, payload_hash, utc_iso

targets = json.loads('TARGETS')
apps = MigrationExecutor(connection).loader.project_state([tuple(t) for t in targets]).apps
get = apps.get_model
now = timezone.now()
User, Group = get("auth", "User"), get("auth", "Group")
alice = User.objects.create(username="alice", email="alice@example.com", is_active=True)
bob = User.objects.create(username="bob", email="bob@example.com", is_active=True)
sre = Group.objects.create(name="sre")
bob.groups.add(sre)
get("accounts", "SlackIdentity").objects.create(
    user=bob, team_id="T1", slack_user_id="U_BOB", linked_at=now, linked_by="email")
get("otp_totp", "TOTPDevice").objects.create(
    user=bob, name="phone", confirmed=True, key="3132333435363738393031323334353637383930")
profile = get("broker", "AccessProfile").objects.create(
    slug="test-db", title="Test", provider_kind="postgres.role", catalog_sha256="0" * 64,
    spec={"id": "test-db"})
Request = get("broker", "AccessRequest")
request = Request.objects.create(
    profile=profile, requester=alice, duration=timedelta(hours=1), source="web",
    created_at=now, pending_until=now + timedelta(hours=1), status="approved", decided_at=now)
get("approvals", "Approval").objects.create(
    request=request, approver=bob, decision="approve", source="slack", mfa_verified_at=now,
    mfa_method="totp", created_at=now)
grant = get("broker", "Grant").objects.create(
    request=request, status="active", duration=timedelta(hours=1), created_at=now,
    activated_at=now, expires_at=now + timedelta(hours=1), handle={"role": "airlock_x"})
extension = Request.objects.create(
    profile=profile, requester=alice, duration=timedelta(minutes=30), source="web",
    created_at=now, pending_until=now + timedelta(hours=1), status="approved", decided_at=now,
    extends=grant)
Event, Head = get("broker", "AuditEvent"), get("broker", "AuditChainHead")
previous = GENESIS_HASH
for seq, (action, target_type, target_id, data) in enumerate([
    ("request.approved", "accessrequest", str(request.pk), {}),
    ("grant.activated", "grant", str(grant.pk), {}),
    ("grant.extended", "grant", str(grant.pk), {"request": str(extension.pk)}),
], 1):
    event = dict(seq=seq, created_at=now, actor_id=bob.pk, actor="bob", action=action,
                 target_type=target_type, target_id=target_id, from_status="", to_status="",
                 reason="", source="web", ip=None, user_agent="", data=data, prev_hash=previous)
    event["hash"] = payload_hash({**event, "created_at": utc_iso(now)})
    Event.objects.create(**event)
    previous = event["hash"]
Head.objects.create(pk=1, seq=3, hash=previous)
print(json.dumps({"request": str(request.pk), "extension": str(extension.pk),
                  "grant": str(grant.pk)}))
"""

# What today's models say about the same rows.
READ = """
import json
from audit import trail
from audit.models import AuditEvent
from accounts.models import Authenticator
from broker.models import AccessRequest, Approval, Grant
from integrations.slack.models import SlackIdentity

ids = json.loads('IDS')
approval = Approval.objects.get(request_id=ids["request"])
device = Authenticator.objects.get(user__username="bob")
report = trail.verify_chain()
print(json.dumps({
    "approval": [approval.approver.username, approval.decision, approval.mfa_method],
    "decisions": AccessRequest.objects.get(pk=ids["request"]).decisions.count(),
    "slack": list(SlackIdentity.objects.values_list("user__username", "slack_user_id")),
    "seed": device.bin_key.decode(),
    "grant": Grant.objects.get(pk=ids["grant"]).handle,
    "events": list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)),
    "chain": [report.intact, report.count],
    "outcome": AccessRequest.objects.get(pk=ids["extension"]).extension_outcome,
}))
"""


@pytest.fixture
def empty_database():
    name = f"test_airlock_upgrade_{secrets.token_hex(4)}"
    server = airlock_database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": "memory://"}
    env.pop("DATABASE_MIGRATE_URL", None)
    ran = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_a_database_of_the_first_layout_migrates_forward_losing_nothing(empty_database):
    for app, migration in FIRST_LAYOUT:
        manage(empty_database, "migrate", "--noinput", app, migration)
    seed = SEED.replace("TARGETS", json.dumps(FIRST_LAYOUT))
    seeded = json.loads(manage(empty_database, "shell", "--no-imports", "-c", seed))

    manage(empty_database, "migrate", "--noinput")

    read = READ.replace("IDS", json.dumps(seeded))
    now = json.loads(manage(empty_database, "shell", "--no-imports", "-c", read))
    assert now["approval"] == ["bob", "approve", "totp"] and now["decisions"] == 1
    assert now["slack"] == [["bob", "U_BOB"]]
    assert now["seed"] == "1234567890" * 2  # the device moved, its seed now encrypted
    assert now["grant"] == {"role": "airlock_x"}
    assert now["events"] == ["request.approved", "grant.activated", "grant.extended"]
    assert now["chain"] == [True, 3]
    assert now["outcome"] == "applied"  # read from the trail into its column
