"""`/metrics` for the monitoring people already run: scraped with a bearer token
and read by prometheus_client's own text parser, its numbers are the
database's; without the token nothing; the Grafana dashboard in the repository
asks only for metrics Airlock exports."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from broker import lifecycle, task_names, task_timing
from broker.models import Alert, Grant
from tests.support.grants import active_grant
from tests.support.locks import lock_behind_its_back

TOKEN = "metrics-test-token"  # nosec B105  # a test token
DASHBOARD = Path(__file__).parent.parent / "deploy/grafana/airlock.json"


@pytest.fixture
def scrape(monkeypatch):
    monkeypatch.setenv("AIRLOCK_METRICS_TOKEN", TOKEN)

    def read() -> dict[str, dict[tuple, float]]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200 and response["Cache-Control"] == "no-store"
        samples: dict[str, dict[tuple, float]] = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                samples.setdefault(sample.name, {})[labels] = sample.value
        return samples

    return read


def test_the_numbers_are_the_databases(scrape, people, submit, step_up, pg_target):
    grant = active_grant(people, submit, step_up)  # requested, approved, activated
    submit(people.alice, slug="test-db-critical", ticket="INC-2")  # waiting
    lock_behind_its_back(people.carol, scope="user", user=people.charlie)
    before = scrape()
    assert before["airlock_requests_total"][(("status", "pending"),)] == 1
    assert before["airlock_requests_total"][(("status", "approved"),)] == 1
    assert before["airlock_decisions_total"][(("decision", "approve"),)] == 1
    assert before["airlock_activations_total"][(("provider", "postgres.role"),)] == 1
    assert before["airlock_grants_live"][(("provider", "postgres.role"),)] == 1
    assert before["airlock_locks_holding"][(("scope", "user"),)] == 1
    assert before["airlock_audit_head_seq"][()] > 0

    Grant.objects.filter(pk=grant.pk).update(expires_at=timezone.now())
    lifecycle.grant_expire(grant_id=grant.pk)
    after = scrape()
    assert (
        after["airlock_revocations_total"][(("outcome", "revoked"), ("provider", "postgres.role"))]
        == 1
    )
    assert after["airlock_grants_live"][(("provider", "postgres.role"),)] == 0
    assert after["airlock_revocation_lag_seconds_count"][()] == 1
    assert after["airlock_revocation_lag_seconds_bucket"][(("le", "+Inf"),)] == 1
    assert after["airlock_audit_head_seq"][()] > before["airlock_audit_head_seq"][()]


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Bearer {TOKEN}x", TOKEN])
def test_without_the_token_nothing(monkeypatch, db, header):
    monkeypatch.setenv("AIRLOCK_METRICS_TOKEN", TOKEN)
    response = Client().get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and b"airlock_" not in response.content


def test_off_without_a_token_configured(monkeypatch, db):
    monkeypatch.delenv("AIRLOCK_METRICS_TOKEN", raising=False)
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_every_dashboard_panel_asks_for_metrics_airlock_exports(
    scrape, people, submit, step_up, pg_target
):
    active_grant(people, submit, step_up)  # so that every family has samples
    Alert.objects.create(kind="break_glass", key="k", message="m", created_at=timezone.now())
    task_timing.observe(task_names.SWEEP, "wait", 0.1)
    task_timing.observe(task_names.SWEEP, "run", 0.2)
    task_timing.flush()
    exported = set(scrape())
    panels = json.loads(DASHBOARD.read_text())["panels"]
    asked = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\bairlock_[a-z_]+", target["expr"])
    }
    # A gauge Airlock exports only with a Redis broker, as in production.
    assert asked - exported <= {"airlock_celery_queue_depth"}, asked - exported
    assert len(panels) >= 10 and asked


def test_a_failed_revocation_is_no_revocation_lag(scrape, people, submit, step_up, pg_target):
    grant = active_grant(people, submit, step_up)
    Grant.objects.filter(pk=grant.pk).update(
        status=Grant.Status.REVOKE_FAILED, end_reason="expired", ended_at=timezone.now()
    )
    assert scrape()["airlock_revocation_lag_seconds_count"][()] == 0
