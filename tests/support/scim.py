"""SCIM as an identity provider sends it: the bearer token, the schemas' names, a
client that holds the token (the `scim` fixture, a plugin of tests/conftest.py),
and a JSON request."""

import json

import pytest
from django.test import Client

TOKEN = "scim-test-token"  # nosec B105  # a test token
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def scim(monkeypatch, people):
    monkeypatch.setenv("AIRLOCK_SCIM_TOKEN", TOKEN)
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}", raise_request_exception=False)


def send(scim, method, path, body=None):
    if body is None:
        return getattr(scim, method)(path)
    return getattr(scim, method)(path, json.dumps(body), content_type="application/scim+json")
