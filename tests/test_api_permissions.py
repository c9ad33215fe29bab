"""Who may call what: every API operation x every persona, with the answer expected.

The rows come from the API's URL conf: an endpoint added without a row here fails
`test_every_api_endpoint_has_a_row`.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import URLPattern, reverse
from django.utils import timezone

from accounts.models import ApiToken
from broker import lifecycle
from broker.api import urls as api_urls
from broker.models import AccessProfile, Grant
from tests.support.locks import lock_behind_its_back
from tests.support.people import WEB, current_code, phone_of

PERSONAS = ["anonymous", "expired", "revoked", "alice", "bob", "charlie", "dave", "admin", "erin"]
OK, CREATED, BAD, FORBIDDEN, MISSING, CONFLICT = 200, 201, 400, 403, 404, 409

# name -> (method, what the path needs, body, {persona: status}); tokens that
# are expired or revoked, and no token at all, always get 401.
# erin approves another team's profile and is of the security role.
EVERYONE = {"alice": OK, "bob": OK, "charlie": OK, "dave": OK, "admin": OK, "erin": OK}
VIEWERS = {"alice": OK, "bob": OK, "charlie": MISSING, "dave": OK, "admin": OK, "erin": MISSING}
AUDITORS = {
    "alice": FORBIDDEN, "bob": FORBIDDEN, "charlie": FORBIDDEN, "dave": OK, "admin": OK,
    "erin": FORBIDDEN,
}  # fmt: skip
DECIDERS = {
    "alice": FORBIDDEN, "bob": OK, "charlie": MISSING, "dave": FORBIDDEN, "admin": FORBIDDEN,
    "erin": MISSING,
}  # fmt: skip
SECURITY_OR_AUDITORS = {**AUDITORS, "erin": OK}
SECURITY_ONLY = {**AUDITORS, "dave": FORBIDDEN, "admin": FORBIDDEN}
MATRIX = {
    "api-me": ("get", None, None, EVERYONE),
    "api-profiles": ("get", None, None, EVERYONE),
    "api-catalog": ("get", None, None, AUDITORS),
    "api-requests": ("get", None, None, EVERYONE),
    "api-request-create": (
        "post",
        None,
        {"profile": "other-db", "duration": "30m", "reason": "INC-9"},
        {
            "alice": CREATED,
            "bob": FORBIDDEN,
            "charlie": FORBIDDEN,
            "dave": FORBIDDEN,
            "admin": FORBIDDEN,
            "erin": FORBIDDEN,
        },
    ),
    # No profile of the test catalog has break-glass: alice, who may request, hears so.
    "api-request-break-glass": (
        "post",
        None,
        {"profile": "test-db", "duration": "30m", "reason": "down", "otp": "CODE"},
        {
            "alice": FORBIDDEN,
            "bob": FORBIDDEN,
            "charlie": FORBIDDEN,
            "dave": FORBIDDEN,
            "admin": FORBIDDEN,
            "erin": FORBIDDEN,
        },
    ),
    "api-request": ("get", "request", None, VIEWERS),
    "api-request-cancel": (
        "post",
        "request",
        {},
        {
            "alice": OK,
            "bob": FORBIDDEN,
            "charlie": MISSING,
            "dave": FORBIDDEN,
            "admin": FORBIDDEN,
            "erin": MISSING,
        },
    ),
    "api-request-approve": ("post", "request", {"otp": "CODE"}, DECIDERS),
    "api-request-deny": ("post", "request", {"otp": "CODE", "reason": "no"}, DECIDERS),
    "api-grants": ("get", None, None, EVERYONE),
    "api-grant": ("get", "grant", None, VIEWERS),
    "api-grant-revoke": (
        "post",
        "grant",
        {},
        {
            "alice": OK,
            "bob": OK,
            "charlie": MISSING,
            "dave": FORBIDDEN,
            "admin": OK,
            "erin": MISSING,
        },
    ),
    # vault-token extends by policy, but the grant is not active yet: its owner gets
    # past the checks to a 409; nobody else may extend someone's grant.
    "api-grant-extend": (
        "post",
        "grant",
        {"duration": "30m", "reason": "more"},
        {
            "alice": CONFLICT,
            "bob": MISSING,
            "charlie": MISSING,
            "dave": MISSING,
            "admin": MISSING,
            "erin": MISSING,
        },
    ),
    # The grant is not active yet: its owner gets past the checks to a 409, nobody
    # else learns it exists, approvers and admins included.
    "api-grant-reveal": (
        "post",
        "grant",
        {"otp": "CODE"},
        {
            "alice": CONFLICT,
            "bob": MISSING,
            "charlie": MISSING,
            "dave": MISSING,
            "admin": MISSING,
            "erin": MISSING,
        },
    ),
    "api-audit-events": ("get", None, None, AUDITORS),
    "api-audit-export": ("get", None, None, AUDITORS),
    "api-audit-manifest": ("get", None, None, {**AUDITORS, "dave": BAD, "admin": BAD}),
    "api-audit-keys": ("get", None, None, AUDITORS),
    "api-locks": ("get", None, None, SECURITY_OR_AUDITORS),
    "api-lock-targets": ("get", None, None, SECURITY_OR_AUDITORS),
    "api-lock": ("get", "lock", None, SECURITY_OR_AUDITORS),
    "api-lock-create": (
        "post",
        None,
        {"scope": "profile", "subject": "other-db", "reason": "x", "otp": "CODE"},
        {**SECURITY_ONLY, "erin": CREATED},
    ),
    # erin proposes lifting carol's lock: a 200 that leaves it in force.
    "api-lock-lift": ("post", "lock", {"reason": "x", "otp": "CODE"}, SECURITY_ONLY | {"erin": OK}),
    "api-schema": ("get", None, None, EVERYONE),
    "api-docs": ("get", None, None, EVERYONE),
}


def test_every_api_endpoint_has_a_row():
    named = {p.name for p in api_urls.urlpatterns if isinstance(p, URLPattern) and p.name}
    assert named == set(MATRIX)


@pytest.fixture
def world(people, submit, step_up):
    """A pending request of alice's, and a scheduled grant from another one."""
    pending = submit(people.alice)
    approved = submit(people.alice, slug="vault-token")
    step_up(people.carol)
    lifecycle.access_request_approve(request_id=approved.id, approver=people.carol, info=WEB)
    lock = lock_behind_its_back(
        people.carol, scope="profile", profile=AccessProfile.objects.get(slug="broken-db")
    )
    return {
        "request": pending.id,
        "grant": Grant.objects.get(request=approved).id,
        "lock": lock.pk,
    }


def client_as(api, people, persona: str):
    if persona == "anonymous":
        return api()
    if persona in ("expired", "revoked"):
        client = api(people.alice)
        field = "expires_at" if persona == "expired" else "revoked_at"
        ApiToken.objects.filter(user=people.alice).update(
            **{field: timezone.now() - timedelta(seconds=1)}
        )
        return client
    return api(getattr(people, persona))


def answer_problem(api, people, world, name: str, persona: str) -> str | None:
    """What is wrong with the answer `persona` gets at `name`, or None."""
    method, needs, body, expected = MATRIX[name]
    path = reverse(name, kwargs={f"{needs}_id": world[needs]} if needs else None)
    client = client_as(api, people, persona)
    if body and body.get("otp") == "CODE" and persona in PERSONAS[3:]:
        body = {**body, "otp": current_code(phone_of(getattr(people, persona)))}
    response = (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else (getattr(client, method)(path))
    )
    want = expected.get(persona, 401)
    if response.status_code == want:
        return None
    return f"{persona}: {response.status_code}, not {want}: {response.content[:300]!r}"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_api_permission_matrix(api, people, world, name):
    """Each persona in turn, each in a savepoint rolled back after it: the world is
    built once per endpoint."""
    problems = []
    for persona in PERSONAS:
        with transaction.atomic():
            problems.append(answer_problem(api, people, world, name, persona))
            transaction.set_rollback(True)
    assert not any(problems), (name, [problem for problem in problems if problem])
