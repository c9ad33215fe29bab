"""Who may open or post what on the web: every URL x every persona, with the
answer expected. The rows come from the URL conf: a page added without a row
fails `test_every_web_url_has_a_row`. (The API has its own matrix; Slack's
endpoint its own tests.)"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from accounts.models import Authenticator
from accounts.selectors import MFA_SESSION_KEY, recent_step_up
from accounts.tokens import token_create
from airlock import urls as web_urls
from broker import lifecycle
from broker.models import AccessProfile, ExternalAccess, Grant, ReviewRemoval
from tests.support.locks import lock_behind_its_back
from tests.support.people import WEB

# anonymous; alice asks; charlie is nobody here; bob approves test-db; erin approves
# another profile; dave audits; admin; carol approves test-db but has no MFA. carol
# and erin are the security role.
PERSONAS = ["anonymous", "alice", "charlie", "bob", "erin", "dave", "admin", "carol"]
SIGNED_IN = PERSONAS[1:]
OK, FOUND, FORBIDDEN, MISSING = 200, 302, 403, 404
TO_LOGIN = "login"  # a 302 to the sign-in page
TO_MFA = "mfa"  # a 302 to the MFA verify page
# Who passed MFA a moment ago (bob too, in `world`, to approve); carol has no authenticator.
STEPPED_UP = {"alice", "charlie", "erin", "dave", "admin"}


def every(status, **exceptions):
    return {p: exceptions.get(p, status) for p in SIGNED_IN} | {"anonymous": TO_LOGIN}


VIEWERS = every(OK, charlie=MISSING, erin=MISSING)
AUDITORS = every(FORBIDDEN, dave=OK, admin=OK)

# name -> (method, needs, body, expected per persona)
MATRIX = {
    "home": ("get", None, None, every(OK)),
    "login": ("get", None, None, {**{p: FOUND for p in SIGNED_IN}, "anonymous": OK}),
    "logout": ("post", None, {}, {p: FOUND for p in PERSONAS}),
    "request-new": ("get", None, None, every(OK)),
    "request-detail": ("get", "request", None, VIEWERS),
    "request-decide": (
        "post", "request", {"decision": "approve"},
        every(FORBIDDEN, bob=FOUND, charlie=MISSING, erin=MISSING, carol=TO_MFA),
    ),
    "request-cancel": (
        "post", "request", {}, every(FORBIDDEN, alice=FOUND, charlie=MISSING, erin=MISSING)
    ),
    # Approvers of the profile who can see it (carol needs no MFA to say so).
    "request-label": (
        "post", "request", {"label": "unusual"},
        every(FORBIDDEN, bob=FOUND, carol=FOUND, charlie=MISSING, erin=MISSING),
    ),
    # Access reviews: test-db's (open; its reviewers are test-db's approvers, bob and
    # carol; alice is reviewed), and test-db-critical's (closed: alice removed).
    "access-reviews": ("get", None, None, every(OK)),
    "access-review-new": (
        "post", None, {"name": "x", "subject": "profile:vault-token", "days": "7",
                       "unreviewed": "keep"},
        every(FORBIDDEN, carol=FOUND, erin=FOUND, admin=FOUND),
    ),
    **{name: ("get", needs, None, every(MISSING, bob=OK, carol=OK, erin=OK, dave=OK, admin=OK))
       for name, needs in (("access-review", "review"), ("access-review-patch", "review"),
                           ("access-review-evidence", "closed-review"))},
    "access-review-decide": (
        "post", "review-item", {"decision": "keep", "note": "x"},
        every(FORBIDDEN, bob=FOUND, carol=TO_MFA, alice=MISSING, charlie=MISSING),
    ),
    "review-removal-lift": (
        "post", "removal", {"reason": "a mistake"},
        every(FORBIDDEN, erin=FOUND, admin=FOUND, carol=TO_MFA, alice=MISSING, charlie=MISSING),
    ),
    # Third parties: vendor1 is sponsored by alice (erin and carol: the security role).
    "externals": ("get", None, None, every(OK)),
    # test-db is not open to externals here: nobody's invitation is valid.
    "external-invite": (
        "post", None, {"username": "v2", "company": "Acme", "contract_ends": "2099-01-01",
                       "profiles": ["test-db"]},
        every(400, carol=TO_MFA),
    ),
    # An invitation's code is posted, never in a URL: the page is anyone's.
    "external-accept": ("get", None, None, {p: OK for p in PERSONAS}),
    "external-accept-continue": ("get", None, None, {p: FOUND for p in PERSONAS}),
    # A link of before the code moved after "#": a redirect, never a 404 (logged).
    "external-accept-old-link": ("get", "invitation", None, {p: FOUND for p in PERSONAS}),
    # No partner identity provider here (tests/test_partner_sign_in.py has one): a
    # partner's sign-in is nobody's, and a callback nobody started signs in nobody.
    "external-accept-partner": ("post", None, {}, {p: MISSING for p in PERSONAS}),
    "partner-sign-in": ("get", "partner", None, {p: MISSING for p in PERSONAS}),
    "partner-sign-in-callback": ("get", "partner", None, {p: FOUND for p in PERSONAS}),
    **{name: ("post", "external", body,
              every(MISSING, alice=FOUND, erin=FOUND, admin=FOUND, carol=TO_MFA))
       for name, body in (("external-end", {"reason": "x"}),
                          ("external-hand-over", {"sponsor": "bob"}),
                          ("external-contract", {"contract_ends": "2099-01-01"}))},
    "grant-detail": ("get", "grant", None, VIEWERS),
    # The grant is scheduled: its owner is told (a message); for anyone else, even
    # its approver or an admin, there is no credential to see.
    "grant-reveal": ("post", "grant", {}, every(MISSING, alice=FOUND, carol=TO_MFA)),
    "grant-revoke": (
        "post", "grant", {}, every(FORBIDDEN, alice=FOUND, bob=FOUND, admin=FOUND,
                                   carol=FOUND, charlie=MISSING, erin=MISSING),
    ),
    "grant-extend": (
        "post", "grant", {"duration": "30m", "reason": "x"},
        every(MISSING, alice=FOUND, bob=MISSING, dave=MISSING, admin=MISSING, carol=MISSING),
    ),
    "approval-queue": ("get", None, None, every(OK)),
    "reviews": ("get", None, None, every(OK)),
    # No break-glass here, so no review: 404 for all (for charlie the request too).
    "review-close": ("post", "request", {"notes": "x"}, every(MISSING)),
    "audit-log": ("get", None, None, AUDITORS),
    "audit-verify": ("post", None, {}, every(FORBIDDEN, dave=FOUND, admin=FOUND)),
    "audit-export": ("get", None, None, AUDITORS),
    "audit-keys": ("get", None, None, AUDITORS),
    "audit-evidence-pack": ("post", None, {"period": "2026-Q4"}, AUDITORS),
    "locks": ("get", None, None, every(FORBIDDEN, dave=OK, admin=OK, carol=OK, erin=OK)),
    "lock-new": (
        "post", None, {"scope": "profile", "subject": "other-db", "reason": "x"},
        every(FORBIDDEN, erin=FOUND, carol=TO_MFA),
    ),
    "lock-lift": ("post", "lock", {"reason": "x"}, every(FORBIDDEN, erin=FOUND, carol=TO_MFA)),
    # The security role, auditors and admins; for anyone else it does not exist.
    **{name: ("get", needs, None, every(MISSING, dave=OK, admin=OK, carol=OK, erin=OK))
       for name, needs in (("insights", None), ("insights-csv", "table"))},
    "ops": ("get", None, None, every(FORBIDDEN, admin=OK)),
    "ops-retry": ("post", "grant", {}, every(FORBIDDEN, admin=FOUND)),
    "mfa-settings": ("get", None, None, every(OK)),
    "notifications": ("get", None, None, every(OK)),
    "mfa-verify": ("get", None, None, every(OK, carol=FOUND)),
    "mfa-enrol": ("get", None, None, every(OK)),
    "mfa-backup-codes": ("post", None, {}, every(OK, carol=TO_MFA)),
    "mfa-remove": ("post", None, {}, every(FOUND, carol=TO_MFA)),
    "api-tokens": ("get", None, None, every(OK)),
    "api-token-create": ("post", None, {"name": "x", "days": "1"}, every(OK, carol=TO_MFA)),
    # Revoking someone else's token id just says "no such token": nothing to learn.
    "api-token-revoke": ("post", "token", {}, every(FOUND)),
    "slack-link": ("get", None, None, every(OK)),
    "slack-events": ("post", None, {}, {p: MISSING for p in PERSONAS}),
    # SCIM is off without AIRLOCK_SCIM_TOKEN, for everyone (tests/test_scim.py turns it on).
    **{name: ("get", None, None, {p: MISSING for p in PERSONAS})
       for name in ("scim-users", "scim-groups", "scim-config", "scim-resource-types",
                    "scim-schemas")},
    "scim-user": ("get", "user", None, {p: MISSING for p in PERSONAS}),
    "scim-group": ("get", "group", None, {p: MISSING for p in PERSONAS}),
    # Prometheus's, with its own token: none configured, nobody (tests/test_metrics.py).
    "metrics": ("get", None, None, {p: MISSING for p in PERSONAS}),
    "healthz": ("get", None, None, {p: OK for p in PERSONAS}),
    "readyz": ("get", None, None, {p: (OK, 503) for p in PERSONAS}),
}  # fmt: skip
SKIPPED_INCLUDES = {"admin", "api"}  # Django's admin; the API has tests/test_api_permissions.py


def web_url_names(patterns=None) -> set[str]:
    """Every named page of every app's URLs, however they are included."""
    names = set()
    for entry in web_urls.urlpatterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            prefix = str(entry.pattern).strip("/")
            if prefix in SKIPPED_INCLUDES | {"oidc"}:
                continue
            assert prefix == "", f"unexpected include {prefix}"
            names |= web_url_names(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(entry.name)
    return names


def test_every_web_url_has_a_row():
    assert web_url_names() == set(MATRIX)


@pytest.fixture
def world(people, submit, step_up):
    pending = submit(people.alice)
    approved = submit(people.alice, slug="vault-token")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=approved.id, approver=people.bob, info=WEB)
    Authenticator.objects.filter(user=people.carol).delete()
    token, _ = token_create(user=people.alice, name="laptop", days=1, info=WEB)
    lock = lock_behind_its_back(
        people.carol, scope="profile", profile=AccessProfile.objects.get(slug="broken-db")
    )
    return {
        # Made only for the rows that need them (most do not): (needs) -> kwargs.
        "external": lambda: {"external_id": _external(people).pk},
        "invitation": lambda: {"token": "not-a-real-invitation"},
        "partner": lambda: {"partner": "acme"},
        "review": lambda: {"review_id": _reviews(people)[0].pk},
        "review-item": lambda: {
            "review_id": (review := _reviews(people)[0]).pk,
            "item_id": review.items.get().pk,
        },
        "closed-review": lambda: {"review_id": _reviews(people)[1].pk},
        "removal": lambda: {
            "removal_id": ReviewRemoval.objects.get(item__review=_reviews(people)[1]).pk
        },
        "request": pending.id,
        "grant": Grant.objects.get(request=approved).id,
        "token": token.pk,
        "lock": lock.pk,
        "user": people.alice.pk,
        "group": Group.objects.get(name="engineers").pk,
        "table": "outcomes",
    }


def _reviews(people):
    """test-db's access review (open) and test-db-critical's (closed: alice removed)."""
    review = lifecycle.access_review_start(
        name="Q4", profile=AccessProfile.objects.get(slug="test-db"), takes=timedelta(days=7),
        actor=people.carol, info=WEB,
    )  # fmt: skip
    closed = lifecycle.access_review_start(
        name="Q4 critical", profile=AccessProfile.objects.get(slug="test-db-critical"),
        takes=timedelta(days=7), unreviewed="remove", actor=people.carol, info=WEB,
    )  # fmt: skip
    return review, lifecycle.access_review_close(review_id=closed.pk, info=WEB)


def _external(people) -> ExternalAccess:
    """vendor1 of Acme, sponsored by alice."""
    vendor = get_user_model().objects.create_user("vendor1")
    return ExternalAccess.objects.create(
        user=vendor, sponsor=people.alice, company="Acme", invited_at=timezone.now(),
        contract_ends_at=timezone.now() + timedelta(days=30), accepted_at=timezone.now(),
    )  # fmt: skip


def answer_problem(client, people, world, step_up, name: str, persona: str) -> str | None:
    """What is wrong with the answer `persona` gets at `name`, or None."""
    method, needs, body, expected = MATRIX[name]
    if persona in STEPPED_UP:  # only the persona signs in: only theirs matters (time)
        step_up(getattr(people, persona))
    key = "name" if needs == "table" else f"{needs}_id"  # a table is named, not numbered
    made = world.get(needs)
    kwargs = made() if callable(made) else {key: made}
    path = reverse(name, kwargs=kwargs if needs else None)
    client.logout()
    if persona != "anonymous":
        user = getattr(people, persona)
        client.force_login(user)
        if verified_at := recent_step_up(user):  # passed in this session, as on the web
            session = client.session
            session[MFA_SESSION_KEY] = verified_at.isoformat()
            session.save()
    response = (
        getattr(client, method)(path, body) if body is not None else (getattr(client, method)(path))
    )
    want, status = expected[persona], response.status_code
    if want in (TO_LOGIN, TO_MFA):
        to = "/login/" if want == TO_LOGIN else "/mfa/verify/"
        right = status == FOUND and to in response["Location"]
    else:
        right = status in want if isinstance(want, tuple) else status == want
    return None if right else f"{persona}: {status}, not {want}"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_web_permission_matrix(client, people, world, step_up, name):
    """Each persona in turn, each in a savepoint rolled back after it: the world is
    built once per URL (it was once per URL and persona, a tenth of the suite)."""
    problems = []
    for persona in PERSONAS:
        with transaction.atomic():
            problems.append(answer_problem(client, people, world, step_up, name, persona))
            transaction.set_rollback(True)
    assert not any(problems), (name, [problem for problem in problems if problem])
