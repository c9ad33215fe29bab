"""Shared fixtures: the personas, the test catalog, MFA, real services.

Personas: alice requests, bob and carol approve (sre), charlie is an outsider,
erin approves another profile only (dba), dave is an auditor, admin is a superuser.
"""

import os
import secrets
import socket
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import signals
from django.db import close_old_connections

from accounts.selectors import recent_step_up
from accounts.services import mfa_step_up
from audit import trail
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile
from lib.durations import parse_duration
from lib.providers import reset_providers
from tests.support.catalogs import TEST_CATALOG
from tests.support.moto_server import MotoServer
from tests.support.people import WEB, current_code, phone_of
from tests.support.pg_target import TargetCluster
from tests.support.vault_server import DevVault
from tests.support.witness import new_bucket, witness_user

pytest_plugins = ["tests.support.scim"]  # the `scim` client fixture


def _reachable(url: str, default_port: int) -> tuple[str, int] | None:
    parsed = urlparse(url)
    address = (parsed.hostname or "127.0.0.1", parsed.port or default_port)
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError:
        return address
    return None


def pytest_configure(config):
    # The test client and the live server speak plain HTTP; a deployment redirects
    # that to HTTPS (tests/test_deploy_checks.py checks the defaults in a fresh
    # process, and the redirect itself with the settings fixture).
    django_settings.SECURE_SSL_REDIRECT = False


def pytest_sessionstart(session):
    """Fail at once with a clear message, not a hang, when a service is down."""
    for variable, scheme, port, name in (
        ("DATABASE_URL", "postgres", 5432, "PostgreSQL"),
        ("CELERY_BROKER_URL", "redis", 6379, "Redis"),
    ):
        url = os.environ.get(variable, "")
        if url.startswith(scheme):
            down = _reachable(url, port)
            if down:
                pytest.exit(
                    f"{name} is not reachable at {down[0]}:{down[1]} ({variable}); "
                    "start it or point the variable elsewhere",
                    returncode=3,
                )


@pytest.fixture(scope="session")
def pg_target():
    """A password-authenticated PostgreSQL the postgres.role provider manages."""
    cluster = TargetCluster()
    cluster.start()
    os.environ["AIRLOCK_PG_DSN_TEST"] = cluster.admin_dsn
    reset_providers()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def mysql_target():
    """The machine's MariaDB with a least-privileged admin the mysql.user provider uses."""
    import pymysql

    from tests.support.mariadb import MariaDbTarget

    target = MariaDbTarget(secrets.token_hex(2))
    try:
        target.start()
    except pymysql.err.OperationalError as exc:
        pytest.exit(f"MariaDB is not reachable at 127.0.0.1:3306 as root: {exc}", returncode=3)
    os.environ["AIRLOCK_MYSQL_DSN_TEST"] = target.admin_dsn
    reset_providers()
    yield target
    target.stop()


@pytest.fixture(scope="session")
def vault(pg_target):
    """A real OpenBao dev server whose database engine manages the target cluster."""
    server = DevVault()
    server.start(pg_target)
    os.environ["VAULT_ADDR"] = server.address  # for the processes tests start
    os.environ["VAULT_TOKEN"] = server.root_token
    django_settings.VAULT_ADDR = server.address  # this process read its settings already
    yield server
    server.stop()


@pytest.fixture(scope="session")
def aws_server():
    """A moto server with IAM enforced; Airlock talks to it as its own IAM user."""
    server = MotoServer()
    server.start()
    os.environ.update(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=server.airlock_keys["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=server.airlock_keys["SecretAccessKey"],
    )
    django_settings.AWS_ENDPOINT_URL, django_settings.AWS_REGION = server.endpoint, "us-east-1"
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def test_dsn_named(monkeypatch):
    """The test catalog's postgres.role profiles name AIRLOCK_PG_DSN_TEST: until the
    test PostgreSQL sets it, it names a server that refuses connections, so that
    those profiles are configured (and fail at the source, where tests expect it)."""
    if not os.environ.get("AIRLOCK_PG_DSN_TEST"):
        monkeypatch.setenv("AIRLOCK_PG_DSN_TEST", "postgresql://airlock@127.0.0.1:1/postgres")


@pytest.fixture
def witness(aws_server, settings, monkeypatch):
    """A fresh witness bucket (Object Lock on) that Airlock writes as its own IAM user."""
    keys = witness_user(aws_server)
    monkeypatch.setenv("AIRLOCK_WITNESS_ACCESS_KEY_ID", keys["AccessKeyId"])
    monkeypatch.setenv("AIRLOCK_WITNESS_SECRET_ACCESS_KEY", keys["SecretAccessKey"])
    settings.AIRLOCK_WITNESS_ENDPOINT_URL = aws_server.endpoint
    settings.AIRLOCK_WITNESS_BUCKET = new_bucket(aws_server)
    return settings.AIRLOCK_WITNESS_BUCKET


@pytest.fixture
def aws(aws_server):
    aws_server.lift_revocations()
    return aws_server


@pytest.fixture
def people(db):
    User = get_user_model()
    names = ["alice", "bob", "carol", "charlie", "dave", "erin"]
    users = {name: User.objects.create_user(name, f"{name}@example.com", "x") for name in names}
    users["admin"] = User.objects.create_superuser("admin", "admin@example.com", "x")
    return SimpleNamespace(**users)


@pytest.fixture
def catalog(people) -> dict[str, AccessProfile]:
    catalog_sync(catalog=parse_catalog(TEST_CATALOG.encode()), info=trail.SYSTEM)
    return {profile.slug: profile for profile in AccessProfile.objects.all()}


@pytest.fixture
def step_up(db):
    """Enrol a TOTP device for a user (once) and pass a real MFA verification."""

    def verify(user) -> None:
        # A code is good once per 30 s step, so reuse a fresh verification as the app does.
        if recent_step_up(user):
            return
        mfa_step_up(user=user, code=current_code(phone_of(user)), info=WEB)

    return verify


@pytest.fixture
def api(people):
    """An API client authenticated with a fresh personal token of `user`."""
    from rest_framework.test import APIClient

    from accounts.tokens import token_create

    def client_for(user=None, days: int = 30) -> APIClient:
        client = APIClient()
        if user is not None:
            _, plaintext = token_create(user=user, name="pytest", days=days, info=WEB)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
            client.token = plaintext
        return client

    return client_for


@pytest.fixture
def submit(catalog):
    def submit_request(user, slug="test-db", duration="1h", reason="investigating INC-1", **kw):
        return lifecycle.access_request_submit(
            requester=user,
            profile=AccessProfile.objects.get(slug=slug),
            duration=parse_duration(duration) if duration else None,
            reason=reason,
            info=WEB,
            **kw,
        )

    return submit_request


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (threads) consuming from Redis."""
    from celery.contrib.testing.worker import start_worker

    from airlock.celery import app

    app.control.purge()
    with start_worker(
        app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=10
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The personas' passwords protect nothing; PBKDF2 would only slow the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def slack_server():
    from tests.support.slack_fake import FakeSlack

    fake = FakeSlack()
    yield fake
    fake.stop()


@pytest.fixture
def slack(slack_server, settings, people):
    """Slack turned on against the local fake; alice, bob and carol are linked."""
    from django.core.cache import cache

    from integrations.slack.models import SlackIdentity
    from integrations.slack.views import bolt_app

    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SLACK_SIGNING_SECRET = "test-signing-secret"
    settings.SLACK_API_URL = slack_server.url
    settings.SLACK_TEAM_IDS = ["T1"]
    settings.SLACK_ENTERPRISE_IDS = []
    settings.SLACK_ENABLED = True
    bolt_app.cache_clear()
    cache.clear()
    slack_server.clear()
    slack_server.failures.clear()
    from django.utils import timezone

    for name in ("alice", "bob", "carol"):
        SlackIdentity.objects.create(
            user=getattr(people, name),
            team_id="T1",
            slack_user_id=f"U_{name.upper()}",
            linked_at=timezone.now(),
            linked_by="email",
        )
    yield slack_server
    bolt_app.cache_clear()


@pytest.fixture
def in_test_transaction():
    """Schemathesis (tests/support/api_schema.py) calls the WSGI app directly: keep Django
    from closing the test's connection at the end of each request (as Django's own
    test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def browser(monkeypatch):
    """Chromium, driven by Playwright."""
    from tests.support.browser import launched_chromium

    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes between steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def airlock(live_server, catalog, monkeypatch, tmp_path):
    """The `airlock` CLI in-process against a live server: airlock(*argv) -> exit
    code; airlock.login(user) saves a fresh API token of the user."""
    import io

    from accounts.tokens import token_create
    from airlock_cli import main as cli

    monkeypatch.setenv("AIRLOCK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("AIRLOCK_URL", raising=False)
    monkeypatch.delenv("AIRLOCK_TOKEN", raising=False)
    monkeypatch.setattr(cli, "POLL_SECONDS", 0.2)

    def run(*argv: str) -> int:
        return cli.main(list(argv))

    def login(user, days: int = 30) -> int:
        _, token = token_create(user=user, name="laptop", days=days, info=WEB)
        monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
        return run("login", "--url", live_server.url, "--token-stdin")

    run.login = login
    return run


@pytest.fixture
def held(people, submit, step_up, pg_target):
    """alice holds test-db (her credential works) and waits for test-db-critical."""
    from tests.support.grants import active_grant, credential_works, reveal

    grant = active_grant(people, submit, step_up)
    credential = reveal(grant, people.alice, step_up)
    assert credential_works(credential, pg_target, None)
    pending = submit(people.alice, slug="test-db-critical", ticket="INC-4")
    return grant, credential, pending
