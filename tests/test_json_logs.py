"""AIRLOCK_LOG_FORMAT=json: one JSON object a line, each naming the request it was
written while serving (the id sent back as X-Request-ID) and who made it; the
API token and the password of those requests appear nowhere."""

import io
import json
import logging

import pytest
from django.test import Client

from airlock.logs import JsonFormatter

PASSWORD = "correct horse battery staple 42"  # nosec B105  # a test password


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_each_line_is_json_with_its_request_and_actor_and_no_secret(
    json_lines, api, people, catalog, monkeypatch
):
    alice = api(people.alice)
    # A request nobody may see: django.request logs the 404, after DRF named alice.
    missing = alice.get("/api/v1/requests/8d5e1f0c-0000-4000-8000-000000000000/")
    assert missing.status_code == 404
    monkeypatch.setenv("AIRLOCK_SCIM_TOKEN", "the-scim-token-value")
    Client().get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer guessed-scim-token")  # logged
    Client().post("/login/", {"username": "alice", "password": PASSWORD})

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert lines, "nothing was logged"
    assert all(
        {"time", "level", "logger", "message", "request_id", "actor"} <= set(e) for e in lines
    )
    by_alice = [e for e in lines if e["actor"] == "alice"]
    assert by_alice and by_alice[0]["request_id"] == missing["X-Request-ID"]
    refused = [e for e in lines if "SCIM request refused" in e["message"]]
    assert refused and refused[0]["actor"] == "" and len(refused[0]["request_id"]) == 32
    text = json_lines.getvalue()
    for secret in (alice.token, PASSWORD, "guessed-scim-token", "the-scim-token-value"):
        assert secret not in text


def test_a_proxys_request_id_is_kept_and_a_strange_one_is_not(db):
    kept = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-2f1c9a7e-req")
    assert kept["X-Request-ID"] == "lb-2f1c9a7e-req"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="<script>\nforged")
    assert replaced["X-Request-ID"] != "<script>\nforged" and len(replaced["X-Request-ID"]) == 32
