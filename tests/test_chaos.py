"""200 access cycles while the stack is broken underneath them.

Request -> approve -> activate -> reveal and use -> revoke or expire, for a
PostgreSQL role, a Vault token, Vault database credentials, a MariaDB
account (whose own expiry event races Airlock's revocation) and an AWS
Identity Center assignment (moto), run by real
Celery worker processes and beat on Redis and PostgreSQL, while a chaos driver
kills the worker with SIGKILL at random moments, restarts Redis (losing every
queued task), freezes OpenBao for 30 s (SIGSTOP: every call hangs until its
timeout) and cuts the workers' database connections (what a database restart
does to them). Afterwards: every grant has ended correctly, nothing is live at
any source, no credential outlived its grant by more than the sweeper's period
plus the outage, the audit chain verifies, and each transition that happened is
recorded exactly once.

Runs with `make test-faults` (a few minutes), not in `make test`.
"""

import random
import signal
import statistics
import textwrap
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from airlock.celery import app
from audit import trail
from audit.models import AuditEvent
from broker import lifecycle
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest, Grant
from broker.reconcile import find_orphans
from integrations.aws.sandbox import PERMISSION_SET
from integrations.vault.client import TIMEOUT_SECONDS as VAULT_TIMEOUT_SECONDS
from integrations.vault.providers import VALID_UNTIL_PAD
from lib.durations import parse_duration
from lib.providers import get_provider
from tests.support.chaos import (
    WORKER_APPLICATION_NAME,
    CeleryProcesses,
    RedisServer,
    airlock_database_url,
)
from tests.support.grants import credential_works
from tests.support.mariadb import core_profile
from tests.support.people import WEB
from tests.support.pg_target import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CYCLES = 200
DRIVERS = 12  # concurrent requesters, one user each
ENGINEERS = [f"eng{i:02d}" for i in range(DRIVERS)]
PROFILES = ["chaos-db", "chaos-token", "chaos-vault-db", "chaos-core", "chaos-aws-sso"]
DURATIONS = ["6s", "8s", "10s"]
VAULT_DATABASE_PAD = timedelta(seconds=VALID_UNTIL_PAD)
SWEEP_SECONDS = 2
REVOKE_RETRY_SECONDS = 3
RECONCILE_SECONDS = 5
RECONCILE_REVOKE_AFTER_SECONDS = 20
VAULT_FROZEN_SECONDS = 30
DATABASE_DOWN_SECONDS = 5
MAX_KILLS = 10
MAX_WORKER_DOWN_SECONDS = 3.0
CHAOS_LIMIT_SECONDS = 240
# How long past its expiry a credential may live: a sweep, plus the longest
# outage (OpenBao frozen, then a call that started just before timing out),
# plus a retry, plus a dead worker, plus slack for a loaded 2-core machine.
LAG_BOUND_SECONDS = (
    SWEEP_SECONDS + VAULT_FROZEN_SECONDS + VAULT_TIMEOUT_SECONDS + REVOKE_RETRY_SECONDS
    + MAX_WORKER_DOWN_SECONDS + 12
)  # fmt: skip
APPROVER_STEP_UP = threading.Lock()
ENDED = {Grant.Status.REVOKED, Grant.Status.FAILED}
TERMINAL_EVENTS = {"grant.revoked", "grant.expired", "grant.failed"}

CHAOS_CATALOG = textwrap.dedent(
    f"""
    version: 1
    groups:
      engineers: [{", ".join(ENGINEERS)}]
      sre: [bob]
    profiles:
      - id: chaos-db
        title: PostgreSQL role
        provider:
          kind: postgres.role
          config: {{dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}}
        requesters: {{groups: [engineers]}}
        approvers: {{groups: [sre]}}
        max_duration: 1h
      - id: chaos-token
        title: Vault token
        provider:
          kind: vault.token
          config: {{policies: [payments-read]}}
        requesters: {{groups: [engineers]}}
        approvers: {{groups: [sre]}}
        max_duration: 1h
      - id: chaos-vault-db
        title: Vault database credentials
        provider:
          kind: vault.database
          config: {{mount: database, role: reader}}
        requesters: {{groups: [engineers]}}
        approvers: {{groups: [sre]}}
        max_duration: 1h
      - id: chaos-aws-sso
        title: AWS Identity Center assignment
        provider:
          kind: aws.identity_center
          config: {{account_id: "123456789012", permission_set: {PERMISSION_SET}}}
        requesters: {{groups: [engineers]}}
        approvers: {{groups: [sre]}}
        max_duration: 1h
    """
)


@dataclass
class Tally:
    started: int = 0
    activated: int = 0
    worked_in_window: int = 0
    unchecked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_cycle(self) -> bool:
        with self.lock:
            if self.started >= CYCLES:
                return False
            self.started += 1
            return True


@dataclass
class Outages:
    vault_frozen: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)

    def note(self, start: float, what: str) -> None:
        self.log.append(f"{time.monotonic() - start:6.1f}s {what}")


@pytest.fixture
def stack(pg_target, vault, mysql_target, aws, step_up):
    broker = RedisServer()
    broker.start()
    # This process submits and approves, so its tasks go to the same Redis.
    app.conf.update(CELERY_BROKER_URL=broker.url, CELERY_BROKER_WRITE_URL=broker.url)
    celery = CeleryProcesses(
        broker.url,
        {
            "AIRLOCK_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "AIRLOCK_REVOKE_RETRY_SECONDS": str(REVOKE_RETRY_SECONDS),
            "AIRLOCK_RECONCILE_SECONDS": str(RECONCILE_SECONDS),
            "AIRLOCK_RECONCILE_REVOKE_AFTER_SECONDS": str(RECONCILE_REVOKE_AFTER_SECONDS),
            "AIRLOCK_WATCH_SECONDS": "3600",
        },
    )
    try:
        assert f":{broker.port}/" in app.connection_for_write().as_uri()
        celery.start_worker()
        celery.start_beat()
        yield broker, celery
    finally:
        celery.stop()
        broker.stop()
        vault.process.send_signal(signal.SIGCONT)  # whatever happened above


def identity_center_users(aws, people: list[tuple[str, str]]) -> None:
    """The example's permission set and these people in moto's Identity Center
    (moto lives for the whole session: what is there already stays)."""
    sso, store = aws.client("sso-admin"), aws.client("identitystore")
    instance = sso.list_instances()["Instances"][0]
    arn, directory = instance["InstanceArn"], instance["IdentityStoreId"]
    names = [
        sso.describe_permission_set(InstanceArn=arn, PermissionSetArn=found)["PermissionSet"][
            "Name"
        ]
        for found in sso.list_permission_sets(InstanceArn=arn)["PermissionSets"]
    ]
    if PERMISSION_SET not in names:
        sso.create_permission_set(InstanceArn=arn, Name=PERMISSION_SET, SessionDuration="PT1H")
    for username, email in people:
        with suppress(store.exceptions.ConflictException):
            store.create_user(
                IdentityStoreId=directory, UserName=username, DisplayName=username,
                Name={"GivenName": username, "FamilyName": "Chaos"},
                Emails=[{"Value": email, "Primary": True}],
            )  # fmt: skip


@pytest.fixture
def chaos_people(db, mysql_target, aws):
    User = get_user_model()
    users = {name: User.objects.create_user(name, f"{name}@example.com", "x") for name in ENGINEERS}
    identity_center_users(aws, [(name, f"{name}@example.com") for name in ENGINEERS])
    users["bob"] = User.objects.create_user("bob", "bob@example.com", "x")
    text = CHAOS_CATALOG + core_profile(mysql_target, "chaos-core")
    catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)
    return users


def run_cycles(user, bob, step_up, tally: Tally, outages: Outages, pg_target, vault, seed):
    rng = random.Random(seed)
    try:
        while tally.take_cycle():
            one_cycle(user, bob, step_up, tally, outages, pg_target, vault, rng)
    except Exception as exc:  # the test fails on it, with what happened
        tally.errors.append(f"{user.username}: {type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def one_cycle(user, bob, step_up, tally, outages, pg_target, vault, rng) -> None:
    profile = AccessProfile.objects.get(slug=rng.choice(PROFILES))
    duration = parse_duration(rng.choice(DURATIONS))
    if profile.slug == "chaos-vault-db":
        duration += VAULT_DATABASE_PAD  # its credential ends that much before the grant would
    request = lifecycle.access_request_submit(
        requester=user,
        profile=profile,
        duration=duration,
        reason="chaos cycle",
        info=WEB,
    )
    with APPROVER_STEP_UP:  # bob verifies once for all drivers: a code is good once
        step_up(bob)
    lifecycle.access_request_approve(request_id=request.id, approver=bob, info=WEB)
    grant = Grant.objects.get(request=request)
    assert wait_until(
        lambda: Grant.objects.get(pk=grant.pk).status != Grant.Status.SCHEDULED,
        timeout=180,
        interval=0.25,
    ), f"grant {grant.id} never left scheduled"
    grant.refresh_from_db()
    if grant.status == Grant.Status.ACTIVE:
        with tally.lock:
            tally.activated += 1
        try_the_credential(user, grant, step_up, tally, outages, pg_target, vault)
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0, 2))
            with suppress(lifecycle.Conflict):  # it expired first
                lifecycle.grant_revoke(grant_id=grant.id, actor=user, info=WEB)
    assert wait_until(
        lambda: Grant.objects.get(pk=grant.pk).status in ENDED, timeout=180, interval=0.25
    ), f"grant {grant.id} never ended: {Grant.objects.get(pk=grant.pk).status}"


def try_the_credential(user, grant, step_up, tally, outages, pg_target, vault) -> None:
    """Reveal it and use it at its source while the grant is live."""
    step_up(user)
    try:
        credential = lifecycle.grant_reveal(grant_id=grant.id, user=user, info=WEB)
    except lifecycle.Conflict as exc:
        tally.unchecked.append(f"{grant.id}: {exc}")  # ended before it could be shown
        return
    if credential["kind"] == "vault_token" and outages.vault_frozen.is_set():
        tally.unchecked.append(f"{grant.id}: OpenBao frozen")
        return
    try:
        works = credential_works(credential, pg_target, vault)
    except Exception as exc:  # OpenBao froze during the call
        tally.unchecked.append(f"{grant.id}: {type(exc).__name__}")
        return
    still_live = Grant.objects.get(pk=grant.pk).status == Grant.Status.ACTIVE
    if works:
        with tally.lock:
            tally.worked_in_window += 1
    elif still_live:
        tally.errors.append(f"grant {grant.id}: active but its credential does not work")


def cut_worker_database_connections(seconds: float) -> int:
    """Terminate every connection the workers open for a while, as a database
    restart does; returns how many were cut."""
    cut = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(airlock_database_url(), autocommit=True) as admin:
        while time.monotonic() < deadline:
            cut += len(
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    [WORKER_APPLICATION_NAME],
                ).fetchall()
            )
            time.sleep(0.05)
    return cut


def chaos(broker: RedisServer, celery: CeleryProcesses, vault, outages: Outages, seed: int):
    """Bounded in time and count: the faults below, then it stops."""
    rng = random.Random(seed)
    start = time.monotonic()
    plan = [(8, "redis"), (20, "freeze"), (60, "database")]
    next_kill = start + rng.uniform(4, 10)
    thawed_at = None
    while not outages.done.is_set() and time.monotonic() - start < CHAOS_LIMIT_SECONDS:
        now = time.monotonic()
        if plan and now - start >= plan[0][0]:
            _, fault = plan.pop(0)
            if fault == "redis":
                broker.restart()
                outages.note(start, "Redis restarted (every queued task lost)")
            elif fault == "freeze":
                outages.vault_frozen.set()
                vault.process.send_signal(signal.SIGSTOP)
                thawed_at = now + VAULT_FROZEN_SECONDS
                outages.note(start, "OpenBao frozen")
            else:
                cut = cut_worker_database_connections(DATABASE_DOWN_SECONDS)
                what = f"workers cut off the database for {DATABASE_DOWN_SECONDS}s"
                outages.note(start, f"{what} ({cut} connections cut)")
        if thawed_at and now >= thawed_at:
            vault.process.send_signal(signal.SIGCONT)
            outages.vault_frozen.clear()
            thawed_at = None
            outages.note(start, "OpenBao thawed")
        if celery.supervise():
            outages.note(start, "worker had exited by itself; restarted")
        if celery.kills < MAX_KILLS and now >= next_kill:
            celery.kill_worker()
            down = rng.uniform(0.5, MAX_WORKER_DOWN_SECONDS)
            outages.note(start, f"worker killed (SIGKILL), down {down:.1f}s")
            time.sleep(down)
            celery.start_worker()
            next_kill = time.monotonic() + rng.uniform(5, 12)
        time.sleep(0.1)
    if thawed_at:
        vault.process.send_signal(signal.SIGCONT)
        outages.vault_frozen.clear()


@pytest.mark.timeout(900)
def test_access_cycles_survive_killed_workers_and_outages(
    stack, chaos_people, pg_target, vault, step_up
):
    broker, celery = stack
    seed = random.randrange(2**32)
    print(f"chaos seed {seed}")
    tally, outages = Tally(), Outages()
    drivers = [
        threading.Thread(
            target=run_cycles,
            args=(chaos_people[name], chaos_people["bob"], step_up, tally, outages),
            kwargs={"pg_target": pg_target, "vault": vault, "seed": seed + i},
        )
        for i, name in enumerate(ENGINEERS)
    ]
    driver = threading.Thread(target=chaos, args=(broker, celery, vault, outages, seed))
    driver.start()
    for thread in drivers:
        thread.start()
    for thread in drivers:
        thread.join()
    outages.done.set()
    driver.join()
    print("\n".join(outages.log))
    print(f"worker killed {celery.kills} times, exited by itself {celery.crashes} times")
    assert not tally.errors, "\n".join(tally.errors) + "\n" + celery.logs()
    assert tally.started == CYCLES
    assert celery.kills >= 5 and any("frozen" in line for line in outages.log)
    assert not any("(0 connections cut)" in line for line in outages.log)

    grants = list(Grant.objects.select_related("request__profile"))
    assert len(grants) == CYCLES
    statuses = Counter(grant.status for grant in grants)
    print(f"grants: {dict(statuses)}; activated {tally.activated}, "
          f"credential tried and working {tally.worked_in_window}, "
          f"not tried {len(tally.unchecked)}")  # fmt: skip
    assert set(statuses) <= ENDED, statuses
    # Most credentials were used inside their window (not those revealed while OpenBao froze).
    assert tally.worked_in_window >= 0.8 * tally.activated

    # Nothing live at any source: neither the grants' credentials nor anything
    # a killed worker minted without recording it (which the reconciler revokes).
    for grant in grants:
        if grant.handle:
            assert not get_provider(grant.profile.provider_kind).check(grant.handle), grant.id

    def every_source_checked_and_clean() -> bool:
        findings = find_orphans()
        return not findings.orphans and not findings.unreachable

    assert wait_until(
        every_source_checked_and_clean,
        timeout=RECONCILE_REVOKE_AFTER_SECONDS + 4 * RECONCILE_SECONDS,
        interval=1,
    ), find_orphans()
    orphans_revoked = AuditEvent.objects.filter(action="reconcile.orphan_revoked").count()
    print(f"orphans left by killed workers and revoked by the reconciler: {orphans_revoked}")

    # No credential outlived its grant by more than a sweep plus the outage.
    lags = sorted(
        (grant.ended_at - grant.expires_at).total_seconds()
        for grant in grants
        if grant.end_reason == "expired"
    )
    print(f"expiry lag over {len(lags)} grants: median {statistics.median(lags):.2f}s, "
          f"max {lags[-1]:.2f}s (bound {LAG_BOUND_SECONDS:.0f}s)")  # fmt: skip
    assert lags and lags[-1] <= LAG_BOUND_SECONDS
    for grant in grants:
        if grant.status == Grant.Status.REVOKED and grant.activated_at:
            assert grant.ended_at <= grant.expires_at + timedelta(seconds=LAG_BOUND_SECONDS)

    # The audit trail: intact, and each transition recorded exactly once.
    assert trail.verify_chain().intact
    assert_each_transition_recorded_once(grants)


def assert_each_transition_recorded_once(grants: list[Grant]) -> None:
    actions: dict[str, Counter] = {}
    for target, action in AuditEvent.objects.values_list("target_id", "action"):
        actions.setdefault(target, Counter())[action] += 1
    for request in AccessRequest.objects.all():
        seen = actions[str(request.id)]
        assert request.status == AccessRequest.Status.APPROVED
        assert (seen["request.submitted"], seen["request.approved"]) == (1, 1), seen
    for grant in grants:
        seen = actions.get(str(grant.id), Counter())
        assert seen["grant.activated"] == (1 if grant.activated_at else 0), (grant.id, seen)
        assert sum(seen[action] for action in TERMINAL_EVENTS) == 1, (grant.id, seen)
        if grant.status == Grant.Status.FAILED:
            expected = "grant.failed"
        else:
            expected = "grant.expired" if grant.end_reason == "expired" else "grant.revoked"
        assert seen[expected] == 1, (grant.id, grant.status, grant.end_reason, seen)
        assert seen["grant.credential_revealed"] <= 1
