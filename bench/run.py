"""Airlock benchmarks: `make bench`. Reports figures beside their targets; it
does not pass or fail. See bench/README.md for how to read each one."""

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airlock.settings")

import django

django.setup()

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import trail
from audit.actions import Action
from audit.models import AuditChainHead, AuditEvent
from broker import lifecycle, task_names
from broker.catalog.load import parse_catalog
from broker.lifecycle import catalog_sync
from broker.models import AccessProfile, AccessRequest, Approval, Grant
from lib.providers import GrantContext, get_provider

RESULTS = Path(__file__).parent / "results" / "latest.json"
EXPORT_EVENTS = int(os.environ.get("BENCH_EXPORT_EVENTS", "1000000"))
PENDING_REQUESTS = int(os.environ.get("BENCH_PENDING_REQUESTS", "10000"))
API_REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "2000"))
CATALOG = """
version: 1
groups: {engineers: [alice], sre: [bob, carol]}
profiles:
  - id: bench-db
    title: Benchmark database
    provider:
      kind: postgres.role
      config: {dsn_env: AIRLOCK_PG_DSN_BENCH, granted_roles: [bench_reader]}
    requesters: {groups: [engineers]}
    approvers: {groups: [sre]}
    max_duration: 1h
    reason_required: false
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def reset() -> None:
    # A killed worker's reserved tasks stay in the broker's `unacked` set and come
    # back once Redis's visibility timeout (an hour) has passed: a later run's
    # worker then ran thousands of expiries of grants that no longer exist before
    # its own (a full run measured a revocation lag p99 of 28.6 s). The benchmark
    # owns its broker's database.
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    with transaction.atomic(), connection.cursor() as cursor:
        # The audit trail refuses TRUNCATE (broker/migrations/0008_audit_guards.py):
        # the benchmark, a superuser, switches triggers off for this transaction.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "TRUNCATE broker_auditevent, broker_auditchainhead, approvals_approval, broker_grant,"
            " broker_accessrequest, broker_accessprofile, accounts_stepup, auth_user, auth_group,"
            " broker_alert, broker_catalogstate, broker_insightsday, broker_insightsrolledday,"
            " broker_tasktiming, broker_riskmodel, broker_risklabel CASCADE"
        )


def analyze() -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would soon give."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def vacuum_roles() -> None:
    """Clear the dead rows that each run's thousands of created and dropped roles
    leave in the shared role catalogs: this machine's PostgreSQL runs with
    autovacuum off, which no production server does."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM pg_authid, pg_auth_members, pg_shdepend")


def people():
    User = get_user_model()
    return {
        name: User.objects.get_or_create(username=name)[0] for name in ("alice", "bob", "carol")
    }


def append_events(count: int) -> None:
    """One writer: `count` events, each in its own transaction, as the lifecycle does."""
    try:
        for _ in range(count):
            with transaction.atomic():
                trail.record(action="bench.event", info=trail.SYSTEM, reason="x")
    finally:
        connections.close_all()


def appends_per_second(writers: int, per_writer: int, *, processes: bool) -> float:
    """Writers as threads of this process (they share its GIL) or as processes of
    their own, as gunicorn and Celery workers are in production."""
    reset()
    connections.close_all()  # a forked writer must open its own connection
    kind = multiprocessing.get_context("fork").Process if processes else threading.Thread
    started = time.perf_counter()
    children = [kind(target=append_events, args=(per_writer,)) for _ in range(writers)]
    for writer in children:
        writer.start()
    for writer in children:
        writer.join()
    return writers * per_writer / (time.perf_counter() - started)


FLOOR_EVENTS = "bench_floor_event"
FLOOR_HEAD = "bench_floor_head"


def append_floor_events(count: int) -> None:
    """One writer of the audit append's floor: the same transaction as an append
    (lock the head row, insert the event, move the head, commit), in plain SQL on
    tables like the trail's (the same columns and indexes), with no Django."""
    import hashlib

    import psycopg

    insert = (
        f"INSERT INTO {FLOOR_EVENTS} (seq, created_at, actor, action, target_type, target_id,"  # noqa: S608
        " from_status, to_status, reason, source, user_agent, data, prev_hash, hash)"
        " VALUES (%s, %s, '', 'bench.event', '', '', '', '', 'x', 'system', '', '{}', %s, %s)"
    )
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        for _ in range(count):
            with conn.transaction():
                seq, prev = conn.execute(
                    f"SELECT seq, hash FROM {FLOOR_HEAD} WHERE id = 1 FOR UPDATE"  # noqa: S608
                ).fetchone()
                moment = timezone.now()
                digest = hashlib.sha256(f"{prev}|{seq + 1}|{moment.isoformat()}|x".encode())
                conn.execute(insert, [seq + 1, moment, prev, digest.hexdigest()])
                conn.execute(
                    f"UPDATE {FLOOR_HEAD} SET seq = %s, hash = %s WHERE id = 1",  # noqa: S608
                    [seq + 1, digest.hexdigest()],
                )


def floor_appends_per_second(writers: int, per_writer: int) -> float:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_EVENTS}, {FLOOR_HEAD}")
        cursor.execute(f"CREATE TABLE {FLOOR_EVENTS} (LIKE broker_auditevent INCLUDING ALL)")
        cursor.execute(f"CREATE TABLE {FLOOR_HEAD} (LIKE broker_auditchainhead INCLUDING ALL)")
        cursor.execute(f"INSERT INTO {FLOOR_HEAD} (id, seq, hash) VALUES (1, 0, '')")  # noqa: S608
    connections.close_all()
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    children = [context.Process(target=append_floor_events, args=(per_writer,))
                for _ in range(writers)]  # fmt: skip
    for writer in children:
        writer.start()
    for writer in children:
        writer.join()
    rate = writers * per_writer / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {FLOOR_EVENTS}, {FLOOR_HEAD}")
    return rate


def bench_audit_append(writers: int = 16, per_writer: int = 250, rounds: int = 3) -> dict:
    """Airlock's appends, by 16 processes and by 16 threads, beside the floor's
    (the same transactions in plain SQL, 16 processes), alternated in rounds."""
    by_kind: dict[str, list[float]] = {"threads": [], "processes": [], "floor": []}
    for _ in range(rounds):  # alternated, so both see the same machine
        for kind in by_kind:
            by_kind[kind].append(
                floor_appends_per_second(writers, per_writer)
                if kind == "floor"
                else appends_per_second(writers, per_writer, processes=kind == "processes")
            )
    report = trail.verify_chain()
    return {
        "events": writers * per_writer,
        "writers": writers,
        "rounds": rounds,
        "events_per_second": round(statistics.median(by_kind["processes"])),
        "events_per_second_threads": round(statistics.median(by_kind["threads"])),
        "floor_events_per_second": round(statistics.median(by_kind["floor"])),
        "ratio_to_floor": round(
            statistics.median(by_kind["processes"]) / statistics.median(by_kind["floor"]), 2
        ),
        "target_events_per_second": 1500,
        "chain_intact": report.intact and report.count == writers * per_writer,
    }


def fill_chain(count: int) -> None:
    """A valid chain of `count` events, written in bulk (what production appends one by one)."""
    reset()
    now = timezone.now()
    prev, batch = trail.GENESIS_HASH, []
    for seq in range(1, count + 1):
        event = AuditEvent(
            seq=seq,
            created_at=now,
            actor="alice",
            actor_id=1,
            action=Action.REQUEST_SUBMITTED,
            target_type="accessrequest",
            target_id=str(uuid.uuid4()),
            to_status="pending",
            reason="investigating INC-1",
            source="web",
            ip="203.0.113.7",
            user_agent="bench",
            data={"profile": "bench-db", "duration": "1h"},
            prev_hash=prev,
        )
        event.hash = trail.event_hash(event)
        prev = event.hash
        batch.append(event)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    AuditChainHead.objects.create(pk=1, seq=count, hash=prev)
    analyze()


def child(*command: str) -> dict:
    output = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        [sys.executable, "-m", "bench.child", *command], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def bench_exports() -> dict:
    fill_chain(EXPORT_EVENTS)
    results = {"events": EXPORT_EVENTS}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("csv", "jsonl", "ocsf"):
            run = child("export_audit", "--format", fmt, "--output", f"{folder}/audit.{fmt}")
            results[fmt] = {
                "events_per_second": round(EXPORT_EVENTS / run["seconds"]),
                "peak_rss_mb": round(run["peak_rss_mb"]),
                "target": ">= 50000 events/s, < 200 MB",
            }
    run = child("verify_audit")
    results["verify_audit"] = {
        "seconds": round(run["seconds"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "target": f"< 30 s for 1,000,000 events (here {EXPORT_EVENTS})",
    }
    return results


def seed_catalog() -> AccessProfile:
    users = people()
    catalog_sync(catalog=parse_catalog(CATALOG.encode()), info=trail.SYSTEM)
    return AccessProfile.objects.get(slug="bench-db"), users


def page_queries(client: Client, url: str, pages: int) -> list[int]:
    """The queries of pages 1 to `pages` of `url` (with a {page} slot), in-process."""
    counts = []
    for page in range(1, pages + 1):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url.format(page=page)).status_code == 200
        counts.append(len(captured))
    return counts


def page_times(session, base: str, url: str, pages: int) -> list[float]:
    """Milliseconds for pages 1 to `pages` of `url` over HTTP, after one page to warm up."""
    _ok(session.get(base + url.format(page=1), timeout=30))
    timings = []
    for page in range(1, pages + 1):
        started = time.perf_counter()
        _ok(session.get(base + url.format(page=page), timeout=30))
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def bench_queue() -> dict:
    reset()
    profile, users = seed_catalog()
    User = get_user_model()
    engineers = users["alice"].groups.get(name="engineers")
    requesters = User.objects.bulk_create(
        User(username=f"eng{i}") for i in range(max(1, PENDING_REQUESTS // 10))
    )
    engineers.user_set.add(*requesters)
    now = timezone.now()
    AccessRequest.objects.bulk_create(
        AccessRequest(
            profile=profile,
            requester=requesters[i % len(requesters)],
            duration=timedelta(hours=1),
            reason="x",
            source="web",
            created_at=now - timedelta(seconds=i),
            pending_until=now + timedelta(hours=1),
        )
        for i in range(PENDING_REQUESTS)
    )
    analyze()
    import requests

    client = Client(HTTP_HOST="localhost")
    client.force_login(users["bob"])
    queue, api = "/approvals/?page={page}", "/api/v1/requests/?scope=awaiting&page={page}"
    queries, api_queries = page_queries(client, queue, 40), page_queries(client, api, 40)
    server = Gunicorn(slack_url="http://127.0.0.1:9")  # no Slack calls here
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    try:
        timings = page_times(session, server.url, queue, 100)
        api_timings = page_times(session, server.url, api, 100)
    finally:
        server.stop()
    return {
        "pending_requests": PENDING_REQUESTS,
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(pct(timings, 0.95), 1),
        "target_p95_ms": 100,
        "queries_per_page": sorted(set(queries)),
        "api_p50_ms": round(statistics.median(api_timings), 1),
        "api_p95_ms": round(pct(api_timings, 0.95), 1),
        "api_queries_per_page": sorted(set(api_queries)),
    }


INSIGHTS_GRANTS = int(os.environ.get("BENCH_INSIGHTS_GRANTS", "100000"))
INSIGHTS_EVENTS = int(os.environ.get("BENCH_INSIGHTS_EVENTS", "1000000"))
INSIGHTS_PAGES = (
    "/insights/?days=7",
    "/insights/?days=30",
    "/insights/?days=90",
    "/insights/?days=30&profile=bench-db",
    "/insights/?days=30&group=engineers",
    "/insights/?days=30&channel=slack",
    "/insights/outcomes.csv?days=90",
)


def bench_insights(samples: int = 40) -> dict:
    """/insights/ over 90 days of history: INSIGHTS_GRANTS grants (a fifth
    relinquished early, through a revoke in the trail) and an audit trail of
    INSIGHTS_EVENTS events, rolled up as beat does (the first roll-up takes the
    90 days, the next the last week again), then timed over HTTP (gunicorn) as
    an auditor: rolled days are read, today is computed from the raw rows."""
    import requests

    from broker import rollup

    reset()
    profile, users = seed_catalog()
    seed_history(profile, users)
    started = time.perf_counter()
    rollup.roll_up(timezone.now())
    first_roll_up = time.perf_counter() - started
    started = time.perf_counter()
    rollup.roll_up(timezone.now())
    next_roll_up = time.perf_counter() - started
    client = Client(HTTP_HOST="localhost")
    client.force_login(users["dave"])
    queries = {url: page_queries(client, url, 1)[0] for url in INSIGHTS_PAGES}
    server = Gunicorn(slack_url="http://127.0.0.1:9")
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    pages = {}
    try:
        for url in INSIGHTS_PAGES:
            for _ in range(4):  # a first page for each of gunicorn's workers
                _ok(session.get(server.url + url, timeout=30))
            timings = page_times(session, server.url, url, samples)
            pages[url] = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(pct(timings, 0.95), 1),
                "queries": queries[url],
            }
    finally:
        server.stop()
    return {
        "grants": INSIGHTS_GRANTS,
        "audit_events": INSIGHTS_EVENTS,
        "first_roll_up_s": round(first_roll_up, 1),
        "next_roll_up_s": round(next_roll_up, 2),
        "target_p95_ms": 300,
        "worst_p95_ms": max(page["p95_ms"] for page in pages.values()),
        "pages": pages,
    }


def bench_risk_model(samples: int = 300) -> dict:
    """The model of usual access (broker/riskmodel). Its detection on synthetic
    organisations, the rules, the model, both and an isolation forest side by side
    (the held-out seed was run only once the model was settled); then, on the
    /insights/ history (INSIGHTS_GRANTS grants of 200 people), its training and
    what asking it adds to a submission: the queries for the request's context,
    the latest version, the score and its reasons."""
    from broker import risk_evaluation
    from broker.policy import risk
    from broker.riskmodel import store
    from broker.riskmodel.features import network_of

    detection = {}
    for seed in (*risk_evaluation.TUNING_SEEDS, risk_evaluation.HELD_OUT_SEED):
        result = risk_evaluation.evaluate(seed)
        detection[str(seed)] = {
            "held_out": seed == risk_evaluation.HELD_OUT_SEED,
            "normal": result.normal,
            "attack_requests": result.attack_requests,
            "model_score_us_median": round(result.scoring_microseconds, 1),
            **{
                d.method: {
                    "auc": round(d.auc, 3),
                    "flagged_at_1pct": round(d.flagged[0.01], 3),
                    "flagged_at_2pct": round(d.flagged[0.02], 3),
                    "attacks_flagged_at_2pct": round(d.attacks_flagged, 3),
                    "per_attack": {
                        kind: f"{found}/{total}" for kind, (found, total) in d.attacks.items()
                    },
                }
                for d in result.methods
            },
        }
    reset()
    profile, users = seed_catalog()
    seed_history(profile, users)
    now = timezone.now()
    started = time.perf_counter()
    model = store.retrain(now)
    training = time.perf_counter() - started
    requester = get_user_model().objects.get(username="eng7")
    spec, zone = risk.risk_spec(), timezone.get_current_timezone()

    def ask() -> None:
        observation = store.observation_for(
            user=requester,
            profile=profile.slug,
            duration=timedelta(hours=1),
            channel="web",
            network=network_of("203.0.113.7"),
            ticket="",
            local_time=now.astimezone(zone),
            now=now,
        )
        store.assess_unusual(observation, requester.get_username())

    def facts() -> None:
        risk.facts_for(
            user=requester,
            profile=profile,
            duration=timedelta(hours=1),
            source="web",
            ip="203.0.113.7",
            now=now,
            spec=spec,
        )

    timings = {}
    for name, call in (("model", ask), ("all_risk_facts", facts)):
        call()  # the first call of a process decodes the model
        spent = []
        for _ in range(samples):
            started = time.perf_counter()
            call()
            spent.append((time.perf_counter() - started) * 1000)
        timings[name] = {
            "p50_ms": round(statistics.median(spent), 2),
            "p95_ms": round(pct(spent, 0.95), 2),
        }
    return {
        "detection": detection,
        "training_requests": model.observations,
        "training_s": round(training, 1),
        "model_json_mb": round(len(json.dumps(model.params)) / 1e6, 2),
        "scoring_ms": timings["model"],
        "risk_facts_ms": timings["all_risk_facts"],
        "target_scoring_ms": 2,
    }


def seed_history(profile: AccessProfile, users: dict) -> None:
    from django.contrib.auth.models import Group

    User = get_user_model()
    Group.objects.get_or_create(name=settings.AIRLOCK_AUDITOR_GROUP)[0].user_set.add(
        users.setdefault("dave", User.objects.create_user("dave"))
    )
    requesters = User.objects.bulk_create(User(username=f"eng{i}") for i in range(200))
    users["alice"].groups.get(name="engineers").user_set.add(*requesters)
    now, hour = timezone.now(), timedelta(hours=1)
    # One request in ten is denied: the rest make INSIGHTS_GRANTS grants.
    requests = INSIGHTS_GRANTS * 10 // 9
    step = timedelta(days=90) / requests
    for first in range(0, requests, 5000):
        batch = range(first, min(first + 5000, requests))
        asked = [now - (requests - n) * step for n in batch]
        made = AccessRequest.objects.bulk_create(
            AccessRequest(
                profile=profile,
                requester=requesters[n % len(requesters)],
                duration=hour,
                reason="x",
                source=("web", "slack", "api", "cli")[n % 4],
                status="approved" if n % 10 else "denied",
                created_at=at,
                pending_until=at + hour,
                decided_at=at + timedelta(minutes=n % 30),
            )
            for n, at in zip(batch, asked, strict=True)
        )
        decision = {"approved": "approve", "denied": "deny"}
        Approval.objects.bulk_create(
            Approval(
                request=r,
                approver=users["bob"],
                decision=decision[r.status],
                source="web",
                mfa_verified_at=r.decided_at,
                created_at=r.decided_at,
            )
            for r in made
            if n_of(r) % 3
        )
        Grant.objects.bulk_create(seeded_grant(r, now) for r in made if r.status == "approved")
    # The trail: a revoke asked for each early end, a failed call now and then,
    # and everyday events up to INSIGHTS_EVENTS, spread over the 90 days.
    append_seeded_events(
        """SELECT ended_at - interval '2 seconds', 'grant.revoke_requested', id::text
        FROM broker_grant WHERE end_reason = 'relinquished' AND ended_at IS NOT NULL
        UNION ALL
        SELECT activated_at, 'grant.activation_retry', id::text FROM broker_grant
        WHERE ('x' || substr(md5(id::text), 1, 4))::bit(16)::int %% 100 = 0"""
    )
    everyday = INSIGHTS_EVENTS - AuditEvent.objects.count()
    append_seeded_events(
        """SELECT now() - random() * interval '90 days', 'request.reminder', ''
        FROM generate_series(1, %s)""",
        [max(0, everyday)],
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Seeded events do not chain: the head is moved onto the last with the
        # guards off, as reset() empties the trail.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE broker_auditchainhead SET seq = (SELECT max(seq) FROM broker_auditevent)"
        )
    analyze()


def append_seeded_events(events: str, params: list | None = None) -> None:
    """Events of `events` (a SELECT of moment, action and grant id), numbered on
    from the chain's last, with stand-in hashes: fast to load, never verified."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO broker_auditevent (seq, created_at, actor_id, actor, action,
                target_type, target_id, from_status, to_status, reason, source, user_agent,
                data, prev_hash, hash)
            SELECT n, at, NULL, '', action, 'grant', target, '', '', '', 'system', '', '{{}}',
                md5((n - 1)::text) || md5('p' || (n - 1)::text), md5(n::text) || md5('p' || n)
            FROM (
                SELECT (SELECT coalesce(max(seq), 0) FROM broker_auditevent)
                       + row_number() OVER (ORDER BY at) AS n, at, action, target
                FROM ({events}) AS events (at, action, target)
            ) AS numbered""",  # noqa: S608 (the bench's own fixed SQL)
            params or [],
        )


def n_of(access_request: AccessRequest) -> int:
    """A request's number in the seeded history, read back from its id's bits."""
    return access_request.pk.int % 1000


def seeded_grant(access_request: AccessRequest, now) -> Grant:
    """Live an hour from the decision; relinquished after half an hour (a fifth),
    else dead 0 to 3 s after expiry; live still if that is later than now."""
    start, n = access_request.decided_at, n_of(access_request)
    relinquished = n % 5 == 0
    end = start + (timedelta(minutes=30) if relinquished else timedelta(hours=1, seconds=n % 4))
    return Grant(
        request=access_request,
        status="revoked" if end < now else "active",
        duration=timedelta(hours=1),
        created_at=start,
        activated_at=start,
        expires_at=start + timedelta(hours=1),
        ended_at=end if end < now else None,
        end_reason=("relinquished" if relinquished else "expired") if end < now else "",
    )


def bench_activation(samples: int = 40) -> dict:
    """Airlock's activation (lock, provider call, encrypt, audit, commit) beside the
    bare provider call, interleaved in one run so the machine's noise hits both."""
    reset()
    profile, users = seed_catalog()
    provider = get_provider("postgres.role")
    config = profile.definition.provider.config
    airlock_ms, bare_ms, handles = [], [], []
    for _ in range(samples):
        request = AccessRequest.objects.create(
            profile=profile,
            requester=users["alice"],
            duration=timedelta(minutes=10),
            source="web",
            created_at=timezone.now(),
            pending_until=timezone.now() + timedelta(hours=1),
            status=AccessRequest.Status.APPROVED,
        )
        grant = Grant.objects.create(
            request=request, duration=request.duration, created_at=timezone.now()
        )
        started = time.perf_counter()
        lifecycle.grant_activate(grant_id=grant.id)
        airlock_ms.append((time.perf_counter() - started) * 1000)
        grant.refresh_from_db()
        handles.append(grant.handle)

        started = time.perf_counter()
        issued = provider.grant(
            GrantContext(
                grant_id=str(uuid.uuid4()),
                request_id="bench",
                profile_id="bench-db",
                username="alice",
                config=config,
                expires_at=timezone.now() + timedelta(minutes=10),
            )
        )
        bare_ms.append((time.perf_counter() - started) * 1000)
        handles.append(issued.handle)
    for handle in handles:
        provider.revoke(handle)
    return {
        "provider": "postgres.role",
        "samples": samples,
        "airlock_median_ms": round(statistics.median(airlock_ms), 1),
        "bare_call_median_ms": round(statistics.median(bare_ms), 1),
        "overhead_median_ms": round(statistics.median(airlock_ms) - statistics.median(bare_ms), 1),
        "target_overhead_ms": 50,
    }


class Gunicorn:
    """Airlock under gunicorn on a free port, Slack pointed at the local fake."""

    def __init__(self, slack_url: str, workers: int = 4):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_TEAM_IDS": "T1",  # the workspace of the bench's signed requests
            "SLACK_API_URL": slack_url,
            "AIRLOCK_API_RATE": "1000000/minute",
            "CACHE_URL": os.environ["CELERY_BROKER_URL"],  # shared by the workers, as advised
            "AIRLOCK_LOG_LEVEL": "WARNING",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "AIRLOCK_HTTPS": "off",  # plain HTTP on loopback
            "DJANGO_SETTINGS_MODULE": "bench.settings",  # Airlock, and the floor views beside
        }
        self.process = subprocess.Popen(  # noqa: S603 (our own server, fixed arguments)
            [sys.executable, "-m", "gunicorn", "airlock.wsgi", "--workers", str(workers),
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        import requests

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not come up")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


SLACK_SECRET = "bench-signing-secret"  # noqa: S105 (a throwaway for the local fake)


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) so far of the web server's processes, the Celery
    worker's, PostgreSQL's and this driver's, read from /proc: on 2 shared cores,
    where the time goes."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"gunicorn": 0.0, "celery": 0.0, "postgres": 0.0, "driver": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # ended meanwhile
        if int(pid) == os.getpid():
            group = "driver"
        elif b"gunicorn" in command:
            group = "gunicorn"
        elif b"celery" in command:
            group = "celery"
        elif command.startswith(b"postgres"):
            group = "postgres"
        else:
            continue
        totals[group] += (int(fields[11]) + int(fields[12])) / tick
    return totals


def cpu_ms_per_call(before: dict[str, float], calls: int) -> dict[str, float]:
    after = cpu_seconds()
    return {group: round((after[group] - before[group]) * 1000 / calls, 2) for group in after}


def timed_posts(calls, concurrency: int) -> list[float]:
    """Run the zero-argument calls `concurrency` at a time; their durations in ms."""
    from concurrent.futures import ThreadPoolExecutor

    def timed(call):
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(timed, calls))


def bench_over_http() -> dict:
    """Slack acknowledgement latency and API submissions per second, against
    gunicorn (4 workers) and PostgreSQL, with Slack's Web API faked locally."""
    import json as json_module
    from urllib.parse import urlencode

    import requests
    from slack_sdk.signature import SignatureVerifier

    from accounts.models import Authenticator
    from accounts.tokens import token_create
    from integrations.slack.models import SlackIdentity
    from tests.support.slack_fake import FakeSlack

    reset()
    profile, users = seed_catalog()
    Authenticator.objects.create(user=users["bob"], name="phone", confirmed=True)
    SlackIdentity.objects.create(user=users["bob"], team_id="T1", slack_user_id="U_BOB",
                                 linked_at=timezone.now(), linked_by="email")  # fmt: skip
    pending = lifecycle.access_request_submit(requester=users["alice"], profile=profile,
                                              info=trail.SYSTEM)  # fmt: skip
    engineers = users["alice"].groups.get(name="engineers")
    clients = get_user_model().objects.bulk_create(
        get_user_model()(username=f"api{i}") for i in range(API_REQUESTS)
    )
    engineers.user_set.add(*clients)
    tokens = [token_create(user=u, name="bench", days=1, info=trail.SYSTEM)[1] for u in clients]
    analyze()
    fake = FakeSlack()
    server = Gunicorn(fake.url)
    verifier = SignatureVerifier(SLACK_SECRET)
    session = requests.Session()
    # One pooled connection per thread in flight (the default pool keeps 10).
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def click(n: int, path: str = "/slack/events"):
        payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U_BOB"},
                   "trigger_id": f"t{n}-{uuid.uuid4()}", "channel": {"id": "C1"},
                   "actions": [{"action_id": "approve", "value": str(pending.pk)}]}  # fmt: skip
        body = urlencode({"payload": json_module.dumps(payload)})
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body),
        }
        return lambda: _ok(session.post(f"{server.url}{path}", data=body,
                                        headers=headers, timeout=10))  # fmt: skip

    def submit(token: str, url: str = "/api/v1/requests/create/"):
        def call():
            _ok(requests.post(f"{server.url}{url}",
                              json={"profile": "bench-db", "duration": "30m"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30),
                201)  # fmt: skip

        return call

    try:
        timed_posts([click(n) for n in range(20)], 1)  # warm every worker up
        timed_posts([click(n, "/bench/floor/slack/") for n in range(20)], 1)
        single = timed_posts([click(n) for n in range(200)], 1)
        # Airlock's clicks and the floor's (bench/floor.py), 20 in flight,
        # alternated in rounds.
        burst, floor_burst = [], []
        click_cpu, floor_click_cpu = Counter(), Counter()
        for _ in range(4):
            cpu_before = cpu_seconds()
            burst += timed_posts([click(n) for n in range(100)], 20)
            click_cpu.update(cpu_ms_per_call(cpu_before, 400))
            cpu_before = cpu_seconds()
            floor_burst += timed_posts([click(n, "/bench/floor/slack/") for n in range(100)], 20)
            floor_click_cpu.update(cpu_ms_per_call(cpu_before, 400))
        # Airlock's submissions and the floor's (bench/floor.py), alternated in
        # rounds, each by engineers of its own, 32 in flight.
        rounds, submit_seconds = 4, 0.0
        submit_cpu, floor_cpu = Counter(), Counter()
        per_round = len(tokens) // (2 * rounds)
        for n in range(rounds):
            ours = tokens[2 * n * per_round : (2 * n + 1) * per_round]
            floors = tokens[(2 * n + 1) * per_round : (2 * n + 2) * per_round]
            cpu_before, started = cpu_seconds(), time.perf_counter()
            timed_posts([submit(t) for t in ours], 32)
            submit_seconds += time.perf_counter() - started
            submit_cpu.update(cpu_ms_per_call(cpu_before, len(ours) * rounds))
            cpu_before = cpu_seconds()
            timed_posts([submit(t, "/bench/floor/submit/") for t in floors], 32)
            floor_cpu.update(cpu_ms_per_call(cpu_before, len(floors) * rounds))
        submitted = per_round * rounds
    finally:
        server.stop()
        fake.stop()
    opened = len(fake.made("views.open"))
    return {
        "slack_ack_1_p50_ms": round(statistics.median(single), 1),
        "slack_ack_1_p99_ms": round(pct(single, 0.99), 1),
        "slack_ack_20_p50_ms": round(statistics.median(burst), 1),
        "slack_ack_20_p99_ms": round(pct(burst, 0.99), 1),
        "slack_ack_20_floor_p99_ms": round(pct(floor_burst, 0.99), 1),
        "slack_modals_opened": opened,
        "slack_click_cpu_ms": {group: round(ms, 2) for group, ms in click_cpu.items()},
        "slack_click_floor_cpu_ms": {group: round(ms, 2) for group, ms in floor_click_cpu.items()},
        "slack_click_cpu_ratio_to_floor": round(
            sum(click_cpu.values()) / sum(floor_click_cpu.values()), 2
        ),
        "target_ack_p99_ms": 100,
        "api_requests": API_REQUESTS,
        "api_submissions_per_second": round(submitted / submit_seconds),
        "api_submission_cpu_ms": {group: round(ms, 2) for group, ms in submit_cpu.items()},
        "api_submission_floor_cpu_ms": {group: round(ms, 2) for group, ms in floor_cpu.items()},
        "api_submission_cpu_ratio_to_floor": round(
            sum(submit_cpu.values()) / sum(floor_cpu.values()), 2
        ),
        "target_api_per_second": 300,
        "pending_after": AccessRequest.objects.filter(status="pending").count(),
    }


def _ok(response, status: int = 200) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")


# As the README advises: a worker that need not wait to meet the others starts
# taking tasks about a second sooner.
WORKER = ("worker", "--without-mingle", "--without-gossip", "--queues=celery")


def spawn_celery(*args: str) -> subprocess.Popen:
    """A Celery worker or beat of Airlock's app, in a process group of its own."""
    return subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
        [sys.executable, "-m", "celery", "-A", "airlock", *args, "--loglevel=WARNING"],
        start_new_session=True,
    )


def wait_for_worker(worker: subprocess.Popen, timeout: float = 60) -> None:
    from celery import current_app

    deadline = time.monotonic() + timeout
    while not current_app.control.ping(timeout=1):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not start (see its output above)")
        time.sleep(0.5)


def activated_grants(profile: AccessProfile, requester, count: int) -> list[Grant]:
    """`count` grants of `profile`, approved and activated (their roles made)."""
    now = timezone.now()
    requests_ = AccessRequest.objects.bulk_create(
        AccessRequest(profile=profile, requester=requester, duration=timedelta(hours=1),
                      source="web", created_at=now, pending_until=now + timedelta(hours=1),
                      status=AccessRequest.Status.APPROVED)
        for _ in range(count)
    )  # fmt: skip
    made = Grant.objects.bulk_create(
        Grant(request=r, duration=r.duration, created_at=now) for r in requests_
    )
    for grant in made:
        lifecycle.grant_activate(grant_id=grant.id)
    return made


def revoke_bare(handles: list[dict], ready, spans) -> None:
    """One process of the floor: revoke these roles with the bare provider once
    every process is ready, and report when it began and ended."""
    provider = get_provider("postgres.role")
    ready.wait()
    began = time.time()
    for handle in handles:
        provider.revoke(handle)
    spans.put((began, time.time()))


def revoked_bare_per_second(handles: list[dict], processes: int) -> float:
    # Fresh processes (spawn): a fork of this one, which runs threads of the
    # Celery client, could inherit a lock one of them held.
    context = multiprocessing.get_context("spawn")
    ready, spans = context.Barrier(processes), context.Queue()
    children = [
        context.Process(target=revoke_bare, args=(handles[n::processes], ready, spans))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    ended = [spans.get(timeout=300) for _ in children]
    for child in children:
        child.join()
    return len(handles) / (max(end for _, end in ended) - min(begin for begin, _ in ended))


def gone_from_source(roles: set[str], timeout: float = 120) -> float:
    """Poll pg_roles until none of `roles` can log in; the moment, by perf_counter."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(os.environ["AIRLOCK_PG_DSN_BENCH"], autocommit=True) as conn:
        while time.monotonic() < deadline:
            (left,) = conn.execute(
                "SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname = ANY(%s)",
                [list(roles)],
            ).fetchone()
            if not left:
                return time.perf_counter()
            time.sleep(0.05)
    raise RuntimeError(f"{left} roles still live after {timeout} s")


def bench_revocation_throughput(grants: int = 500, rounds: int = 2, processes: int = 4) -> dict:
    """How fast the worker catches up with a backlog: `grants` overdue grants whose
    expiry tasks were lost, one sweep, a worker of `processes` processes already
    running; from the sweep's sending until every role is gone at the source.
    Its floor: as many roles made by the bare provider, revoked by it in as many
    processes of this driver, nothing else. Alternated in `rounds`."""
    import signal

    from celery import current_app

    reset()
    vacuum_roles()
    profile, users = seed_catalog()
    config = profile.definition.provider.config
    provider = get_provider("postgres.role")
    worker = spawn_celery(*WORKER, f"--concurrency={processes}")
    rates: dict[str, list[float]] = {"airlock": [], "floor": []}
    cpu: Counter = Counter()
    try:
        wait_for_worker(worker)
        for _ in range(rounds):
            handles = [
                provider.grant(GrantContext(grant_id=str(uuid.uuid4()), request_id="bench",
                                            profile_id="bench-db", username="alice",
                                            config=config,
                                            expires_at=timezone.now() + timedelta(hours=1))).handle
                for _ in range(grants)
            ]  # fmt: skip
            rates["floor"].append(revoked_bare_per_second(handles, processes))

            made = activated_grants(profile, users["alice"], grants)
            current_app.control.purge()  # the expiry tasks, lost with a killed worker
            Grant.objects.filter(pk__in=[g.pk for g in made]).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
            roles = {g.handle["role"] for g in Grant.objects.filter(pk__in=[g.pk for g in made])}
            cpu_before, started = cpu_seconds(), time.perf_counter()
            current_app.send_task(task_names.SWEEP)
            rates["airlock"].append(grants / (gone_from_source(roles) - started))
            # A role stops logging in at a revocation's first step: let the last
            # ones finish (drop, audit, commit) before the next round or the end.
            still_active = Grant.objects.filter(pk__in=[g.pk for g in made], status="active")
            deadline = time.monotonic() + 60
            while still_active.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("grants still active a minute after their roles went")
                time.sleep(0.05)
            cpu.update(cpu_ms_per_call(cpu_before, grants * rounds))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        current_app.control.purge()
    airlock, floor = statistics.median(rates["airlock"]), statistics.median(rates["floor"])
    return {
        "grants": grants,
        "rounds": rounds,
        "processes": processes,
        "revocations_per_second": round(airlock),
        "floor_revocations_per_second": round(floor),
        "ratio_to_floor": round(airlock / floor, 2),
        "cpu_ms_per_revocation": {group: round(ms, 2) for group, ms in cpu.items()},
        "target_revocations_per_second": 300,  # 3x 1,000 grants expiring in 10 s
    }


def bench_revocation_lag(grants: int = 1000, window: float = 10.0, kill: bool = False) -> dict:
    """`grants` active postgres.role grants set to expire within the same `window`
    seconds, a real Celery worker (and beat, for the sweeper) in processes of their
    own; lag = when the role could no longer log in at the source minus expires_at.
    With `kill`, the worker is killed -9 two seconds in and restarted 20 s later."""
    import random
    import signal

    from celery import current_app

    reset()
    vacuum_roles()
    profile, users = seed_catalog()
    activated_grants(profile, users["alice"], grants)

    # The worker and beat run before anything is due, so that their start-up is
    # not measured as lag.
    schedule = tempfile.TemporaryDirectory(prefix="bench-beat-")
    # A worker of its own for the default queue, as the README advises: Slack
    # messages (a backlog of them is left by the HTTP benchmark) have theirs.
    worker = spawn_celery(*WORKER, "--concurrency=4")
    beat = spawn_celery("beat", "--schedule", f"{schedule.name}/celerybeat-schedule")
    wait_for_worker(worker)
    start = timezone.now() + timedelta(seconds=10)  # time enough to schedule them all
    active = list(Grant.objects.filter(status="active"))
    for grant in active:
        grant.expires_at = start + timedelta(seconds=random.uniform(0, window))  # noqa: S311
    Grant.objects.bulk_update(active, ["expires_at"], batch_size=500)
    for grant in active:
        current_app.send_task(task_names.EXPIRE_GRANT, args=[str(grant.pk)], eta=grant.expires_at)
    expiry = {grant.handle["role"]: grant.expires_at for grant in active}
    deadline = time.monotonic() + 10 + window + (80 if kill else 60)
    live_roles = set(expiry)
    gone_at: dict[str, object] = {}

    def poll() -> None:
        import psycopg

        with psycopg.connect(os.environ["AIRLOCK_PG_DSN_BENCH"], autocommit=True) as conn:
            while len(gone_at) < len(live_roles) and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname = ANY(%s)",
                    [list(live_roles - set(gone_at))],
                ).fetchall()
                still = {name for (name,) in rows}
                moment = timezone.now()
                for role in live_roles - set(gone_at) - still:
                    gone_at[role] = moment
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        if kill:
            time.sleep(max(0.0, (start - timezone.now()).total_seconds()) + 2)
            os.killpg(worker.pid, signal.SIGKILL)
            time.sleep(20)
            worker = spawn_celery(*WORKER, "--concurrency=4")
            back_at = timezone.now()
        poller.join()
    finally:
        for process in (worker, beat):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        current_app.control.purge()
        schedule.cleanup()
    lags = [(gone_at[r] - expiry[r]).total_seconds() for r in gone_at]
    killed = {}
    if kill:
        # How long after the worker was started again (or after expiry, if later).
        after = [(gone_at[r] - max(expiry[r], back_at)).total_seconds() for r in gone_at]
        # The first is how long the worker took to start and take its first sweep.
        killed = {"after_return_first_s": round(min(a for a in after if a >= 0), 2),
                  "after_return_p99_s": round(pct(after, 0.99), 2),
                  "after_return_max_s": round(max(after), 2)}  # fmt: skip
    return {
        "grants": len(expiry),
        "window_s": window,
        "worker_killed_for_s": 20 if kill else 0,
        "lag_p50_s": round(statistics.median(lags), 2),
        "lag_p99_s": round(pct(lags, 0.99), 2),
        "lag_max_s": round(max(lags), 2),
        **killed,
        "left_live": len(live_roles) - len(gone_at),
        "target": "p99 < 1 s, max < 3 s, none left live",
    }


VAULT_CATALOG = """
version: 1
groups: {engineers: [alice], sre: [bob, carol]}
profiles:
  - id: bench-vault-token
    title: Vault token
    provider: {kind: vault.token, config: {policies: [payments-read]}}
    requesters: {groups: [engineers]}
    approvers: {groups: [sre]}
    max_duration: 1h
    reason_required: false
  - id: bench-vault-db
    title: Vault database credentials
    provider: {kind: vault.database, config: {mount: database, role: reader}}
    requesters: {groups: [engineers]}
    approvers: {groups: [sre]}
    max_duration: 1h
    reason_required: false
"""


def bench_vault_activation(samples: int = 30) -> dict:
    """Click to credential for vault.token and vault.database: Airlock's activation
    beside the same hvac calls made straight to OpenBao, alternated in one run."""
    from lib.providers import reset_providers
    from tests.support.pg_target import TargetCluster
    from tests.support.vault_server import DevVault

    reset()
    users = people()
    catalog_sync(catalog=parse_catalog(VAULT_CATALOG.encode()), info=trail.SYSTEM)
    target, vault = TargetCluster(), DevVault()
    target.start()
    try:
        vault.start(target)
        os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"] = vault.address, vault.root_token
        settings.VAULT_ADDR = vault.address  # this process read its settings already
        reset_providers()
        client = vault.client()

        def bare_token():
            auth = client.auth.token.create_orphan(
                policies=["payments-read"], ttl="600s", explicit_max_ttl="600s", renewable=False
            )["auth"]
            return lambda: client.auth.token.revoke_accessor(auth["accessor"])

        def bare_database():
            lease = client.secrets.database.generate_credentials(name="reader")["lease_id"]
            client.sys.renew_lease(lease_id=lease, increment=600)
            return lambda: client.sys.revoke_lease(lease_id=lease)

        results = {}
        for slug, bare in (("bench-vault-token", bare_token), ("bench-vault-db", bare_database)):
            profile = AccessProfile.objects.get(slug=slug)
            results[profile.provider_kind] = activation_beside(profile, users, bare, samples)
        return results
    finally:
        vault.stop()
        target.stop()


LOCK_CATALOG = (
    CATALOG.replace("groups: {engineers: [alice], sre: [bob, carol]}",
                    "groups: {engineers: [alice], sre: [bob, carol], security: [bob, carol]}\n"
                    "security: {groups: [security]}")
    + VAULT_CATALOG.split("profiles:\n", 1)[1]
)  # fmt: skip


def bench_lock(grants: int = 100) -> dict:
    """A lock on a user holding `grants` live grants spread over postgres.role
    (this machine's PostgreSQL), vault.token and vault.database (a dev OpenBao
    managing a throwaway PostgreSQL), revoked by a real Celery worker in a process
    of its own. Lag: from the start of the lock's call until the credential was
    seen dead at its source (PostgreSQL's pg_roles, OpenBao's token and lease
    lookups), polled about every 50 ms."""
    import signal

    from celery import current_app

    from accounts.models import StepUp
    from lib.providers import reset_providers
    from tests.support.pg_target import TargetCluster
    from tests.support.vault_server import DevVault

    reset()
    vacuum_roles()
    users = people()
    catalog_sync(catalog=parse_catalog(LOCK_CATALOG.encode()), info=trail.SYSTEM)
    target, vault = TargetCluster(), DevVault()
    target.start()
    worker = None
    try:
        vault.start(target)
        os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"] = vault.address, vault.root_token
        settings.VAULT_ADDR = vault.address  # this process read its settings already
        reset_providers()
        slugs = ["bench-db", "bench-vault-token", "bench-vault-db"]
        now = timezone.now()
        for n in range(grants):
            request = AccessRequest.objects.create(
                profile=AccessProfile.objects.get(slug=slugs[n % len(slugs)]),
                requester=users["alice"], duration=timedelta(minutes=30), source="web",
                created_at=now, pending_until=now + timedelta(hours=1),
                status=AccessRequest.Status.APPROVED,
            )  # fmt: skip
            grant = Grant.objects.create(request=request, duration=request.duration, created_at=now)
            lifecycle.grant_activate(grant_id=grant.id)
        live = list(Grant.objects.filter(status="active").select_related("request__profile"))
        worker = spawn_celery(*WORKER, "--concurrency=4")
        wait_for_worker(worker)
        StepUp.objects.update_or_create(
            user=users["carol"], defaults={"verified_at": timezone.now(), "method": "totp"}
        )
        dead_at: dict[str, float] = {}
        started = time.perf_counter()
        lifecycle.lock_place(
            actor=users["carol"], scope="user", subject="alice", reason="bench", info=trail.SYSTEM
        )
        lock_call_s = time.perf_counter() - started
        deadline = started + 60
        while len(dead_at) < len(live) and time.perf_counter() < deadline:
            for grant in _dead_at_source([g for g in live if str(g.pk) not in dead_at]):
                dead_at[str(grant.pk)] = time.perf_counter() - started
            time.sleep(0.05)
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        current_app.control.purge()
        vault.stop()
        target.stop()
    lags = list(dead_at.values())
    return {
        "grants": len(live),
        "by_kind": {
            kind: sum(g.profile.provider_kind == kind for g in live)
            for kind in ("postgres.role", "vault.token", "vault.database")
        },
        "lock_call_s": round(lock_call_s, 2),
        "dead_p50_s": round(statistics.median(lags), 2) if lags else None,
        "dead_p99_s": round(pct(lags, 0.99), 2) if lags else None,
        "dead_max_s": round(max(lags), 2) if lags else None,
        "left_live": len(live) - len(dead_at),
        "target": "p99 < 2 s after the lock, none left live",
    }


def _dead_at_source(grants: list) -> list:
    """Those of `grants` whose credential is no longer live at its source: one
    query for the PostgreSQL roles, one lookup per Vault credential."""
    import psycopg

    roles = [g.handle["role"] for g in grants if g.profile.provider_kind == "postgres.role"]
    with psycopg.connect(os.environ["AIRLOCK_PG_DSN_BENCH"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname = ANY(%s)", [roles]
        ).fetchall()
    can_log_in = {name for (name,) in rows}
    return [
        grant
        for grant in grants
        if not (
            grant.handle["role"] in can_log_in
            if grant.profile.provider_kind == "postgres.role"
            else get_provider(grant.profile.provider_kind).check(grant.handle)
        )
    ]


def bench_mysql_activation(samples: int = 30) -> dict:
    """Click to credential for mysql.user on the machine's MariaDB (an account, its
    privileges and its expiry event): Airlock's activation beside the bare provider
    call, alternated in one run."""
    import secrets

    from lib.providers import reset_providers
    from tests.support.mariadb import MariaDbTarget, core_profile

    reset()
    users = people()
    target = MariaDbTarget(secrets.token_hex(2))
    target.start()
    try:
        os.environ["AIRLOCK_MYSQL_DSN_TEST"] = target.admin_dsn
        reset_providers()
        text = CATALOG.replace("profiles:\n", "profiles:\n" + core_profile(target, "bench-core"))
        catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)
        profile = AccessProfile.objects.get(slug="bench-core")
        provider, config = get_provider("mysql.user"), profile.definition.provider.config

        def bare():
            issued = provider.grant(GrantContext(
                grant_id=str(uuid.uuid4()), request_id="bench", profile_id="bench-core",
                username="alice", config=config, expires_at=timezone.now() + timedelta(minutes=10),
            ))  # fmt: skip
            return lambda: provider.revoke(issued.handle)

        return activation_beside(profile, users, bare, samples)
    finally:
        target.stop()


def bench_identity_center_activation(samples: int = 30) -> dict:
    """Click to access for aws.identity_center against moto (IAM enforced): Airlock's
    activation beside the bare create_account_assignment (polled until it is done),
    alternated in one run."""
    from integrations.aws.sandbox import PERMISSION_SET, configure_identity_center
    from lib.providers import reset_providers
    from tests.support.moto_server import MotoServer

    reset()
    users = people()
    for user in users.values():
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    server = MotoServer()
    server.start()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=server.endpoint, AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=server.airlock_keys["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=server.airlock_keys["SecretAccessKey"],
        )  # fmt: skip
        settings.AWS_ENDPOINT_URL, settings.AWS_REGION = server.endpoint, "us-east-1"
        reset_providers()
        configure_identity_center(
            server.client("sso-admin"), server.client("identitystore"),
            tuple((u.username, u.email) for u in users.values()),
        )  # fmt: skip
        profile_text = (
            "  - id: bench-sso\n    title: Identity Center\n    provider: {kind: "
            "aws.identity_center, config: {account_id: '123456789012', permission_set: "
            f"{PERMISSION_SET}}}}}\n    requesters: {{groups: [engineers]}}\n"
            "    approvers: {groups: [sre]}\n    max_duration: 1h\n    reason_required: false\n"
        )
        text = CATALOG.replace("profiles:\n", "profiles:\n" + profile_text)
        catalog_sync(catalog=parse_catalog(text.encode()), info=trail.SYSTEM)
        profile = AccessProfile.objects.get(slug="bench-sso")
        provider, config = get_provider(profile.provider_kind), profile.definition.provider.config

        def bare():
            # bob's assignment: alice's is Airlock's, and one principal holds one assignment.
            issued = provider.grant(GrantContext(
                grant_id=str(uuid.uuid4()), request_id="bench", profile_id="bench-sso",
                username="bob", email="bob@example.com", config=config,
                expires_at=timezone.now() + timedelta(minutes=10),
            ))  # fmt: skip
            return lambda: provider.revoke(issued.handle)

        return activation_beside(profile, users, bare, samples, one_at_a_time=True)
    finally:
        server.stop()


def activation_beside(profile, users, bare, samples: int, one_at_a_time: bool = False) -> dict:
    """`one_at_a_time`: undo each round's access before the next (a source that holds
    one assignment per person)."""
    airlock_ms, bare_ms, cleanups = [], [], []
    provider = get_provider(profile.provider_kind)
    for _ in range(samples):
        request = AccessRequest.objects.create(
            profile=profile, requester=users["alice"], duration=timedelta(minutes=10),
            source="web", created_at=timezone.now(),
            pending_until=timezone.now() + timedelta(hours=1),
            status=AccessRequest.Status.APPROVED,
        )  # fmt: skip
        grant = Grant.objects.create(
            request=request, duration=request.duration, created_at=timezone.now()
        )
        started = time.perf_counter()
        lifecycle.grant_activate(grant_id=grant.id)
        airlock_ms.append((time.perf_counter() - started) * 1000)
        grant.refresh_from_db()
        cleanups.append(lambda handle=grant.handle: provider.revoke(handle))
        started = time.perf_counter()
        cleanups.append(bare())
        bare_ms.append((time.perf_counter() - started) * 1000)
        if one_at_a_time:
            while cleanups:
                cleanups.pop()()
    for cleanup in cleanups:
        cleanup()
    return {
        "samples": samples,
        "airlock_median_ms": round(statistics.median(airlock_ms), 1),
        "bare_call_median_ms": round(statistics.median(bare_ms), 1),
        "overhead_median_ms": round(statistics.median(airlock_ms) - statistics.median(bare_ms), 1),
        "target_overhead_ms": 50,
    }


def table(results: dict) -> str:
    """The headline figures beside their targets."""
    exports = results["exports"]
    rows = [
        (
            "audit events/s, 16 writer processes (its floor's)",
            f"{results['audit_append']['events_per_second']}"
            f" ({results['audit_append']['floor_events_per_second']})",
            ">= 1500",
        ),
        (
            "the same, 16 threads of one process",
            results["audit_append"]["events_per_second_threads"],
            "",
        ),
        (
            "activation overhead, median ms",
            results["activation_postgres"]["overhead_median_ms"],
            "<= 50",
        ),
        *[
            (f"activation overhead {kind}, median ms", figures["overhead_median_ms"], "<= 50")
            for kind, figures in results["activation_vault"].items()
        ],
        *[
            (f"activation overhead {kind}, median ms", results[key]["overhead_median_ms"], "<= 50")
            for kind, key in (
                ("mysql.user", "activation_mysql"),
                ("aws.identity_center", "activation_identity_center"),
            )
        ],
        ("approver queue p95 ms, 10k pending", results["approver_queue"]["p95_ms"], "< 100"),
        ("approver queue queries/page", results["approver_queue"]["queries_per_page"], "flat"),
        ("API awaiting list p95 ms, 10k", results["approver_queue"]["api_p95_ms"], "< 100"),
        ("API list queries/page", results["approver_queue"]["api_queries_per_page"], "flat"),
        ("Slack ack p99 ms, 1 at a time", results["http"]["slack_ack_1_p99_ms"], "< 100"),
        (
            "Slack ack p99 ms, 20 at once (its floor's)",
            f"{results['http']['slack_ack_20_p99_ms']}"
            f" ({results['http']['slack_ack_20_floor_p99_ms']})",
            "< 100",
        ),
        (
            "Slack click CPU ms, all processes (its floor's)",
            f"{sum(results['http']['slack_click_cpu_ms'].values()):.1f}"
            f" ({sum(results['http']['slack_click_floor_cpu_ms'].values()):.1f})",
            "<= 5",
        ),
        ("API submissions/s, gunicorn x4", results["http"]["api_submissions_per_second"], ">= 300"),
        (
            "API submission CPU ms, all processes (its floor's)",
            f"{sum(results['http']['api_submission_cpu_ms'].values()):.1f}"
            f" ({sum(results['http']['api_submission_floor_cpu_ms'].values()):.1f})",
            "<= 6.7",
        ),
        *[
            (f"revocation lag {stat} s, {label}", results[key][f"lag_{stat}_s"], target)
            for key, label in (
                ("revocation_lag", "1000 in 10 s"),
                ("revocation_lag_worker_killed", "worker down 20 s"),
            )
            for stat, target in (("p99", "< 1"), ("max", "< 3"))
        ],
        (
            "after the worker is back: first / last revoked, s",
            f"{results['revocation_lag_worker_killed']['after_return_first_s']}"
            f" / {results['revocation_lag_worker_killed']['after_return_max_s']}",
            "last - first <= 3",
        ),
        (
            "revocations/s catching up, 4 processes (its floor's)",
            f"{results['revocation_throughput']['revocations_per_second']}"
            f" ({results['revocation_throughput']['floor_revocations_per_second']})",
            ">= 300",
        ),
        (
            "grants left live after expiry",
            results["revocation_lag"]["left_live"]
            + results["revocation_lag_worker_killed"]["left_live"],
            "0",
        ),
        ("lock on a user, 100 grants: dead at source p99 s", results["lock"]["dead_p99_s"], "< 2"),
        (
            "/insights/ worst p95 ms, 100,000 grants, 1,000,000 events",
            results["insights"]["worst_p95_ms"],
            "< 300",
        ),
        ("grants left live after the lock", results["lock"]["left_live"], "0"),
        (
            "risk model: ms added to a submission, median",
            results["risk_model"]["scoring_ms"]["p50_ms"],
            "<= 2",
        ),
        *[
            (
                f"risk AUC model (rules), {'held-out ' if held['held_out'] else ''}seed {seed}",
                f"{held['model']['auc']:.3f} ({held['rules']['auc']:.3f})",
                ">= 0.95",
            )
            for seed, held in results["risk_model"]["detection"].items()
        ],
        *[
            (
                f"attacks flagged at 2% FP, model (rules), seed {seed}",
                f"{held['model']['attacks_flagged_at_2pct']:.0%}"
                f" ({held['rules']['attacks_flagged_at_2pct']:.0%})",
                ">= 80%",
            )
            for seed, held in results["risk_model"]["detection"].items()
            if held["held_out"]
        ],
        *[
            (f"export {fmt} events/s", exports[fmt]["events_per_second"], ">= 50000")
            for fmt in ("csv", "jsonl", "ocsf")
        ],
        (
            "export peak RSS MB (max)",
            max(exports[f]["peak_rss_mb"] for f in ("csv", "jsonl", "ocsf")),
            "< 200",
        ),
        (
            f"verify_audit s, {exports['events']} events",
            exports["verify_audit"]["seconds"],
            "< 30 at 1M",
        ),
    ]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'figure':<{width}}  {'measured':>12}  target", "-" * (width + 30)]
    lines += [f"{name:<{width}}  {value!s:>12}  {target}" for name, value, target in rows]
    return "\n".join(lines)


def main() -> None:
    results = {"machine": f"{os.cpu_count()} cores", "when": timezone.now().isoformat()}
    benches = (
        ("audit_append", bench_audit_append),
        ("activation_postgres", bench_activation),
        ("activation_vault", bench_vault_activation),
        ("activation_mysql", bench_mysql_activation),
        ("activation_identity_center", bench_identity_center_activation),
        ("approver_queue", bench_queue),
        ("http", bench_over_http),
        ("revocation_lag", bench_revocation_lag),
        ("revocation_lag_worker_killed", lambda: bench_revocation_lag(kill=True)),
        ("revocation_throughput", bench_revocation_throughput),
        ("exports", bench_exports),
        ("lock", bench_lock),
        ("insights", bench_insights),
        ("risk_model", bench_risk_model),
    )
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    unknown = only - {name for name, _ in benches}
    if unknown:
        sys.exit(f"BENCH_ONLY: no benchmark named {', '.join(sorted(unknown))}")
    for name, bench in benches:
        if only and name not in only:
            continue
        print(f"running {name}...", flush=True)
        results[name] = bench()
        print(json.dumps(results[name], indent=2), flush=True)
    reset()
    if only:
        # Figures of a partial run are not written: latest.json holds one whole run.
        print(json.dumps(results, indent=2))
        return
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + table(results))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
