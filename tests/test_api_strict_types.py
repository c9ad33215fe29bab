"""Where the API's schema says string, only a string is taken: a number, a
boolean, a list, an object, or null where null is not allowed, is refused with a
400 that names the field, and changes nothing. (DRF's CharField would turn 0
and 12.5 into "0" and "12.5".) The fields are read from the schema, so a new
operation or field is walked too, and one without a valid body here fails."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessRequest, Grant, Lock
from tests.support.locks import lock_behind_its_back
from tests.support.people import WEB

SCHEMA = SchemaGenerator().get_schema(public=True)
NOT_STRINGS = [0, 42, 3600, -1, 12.5, True, False, [], ["x"], {}, {"a": "b"}, None]

# A body each operation would accept, so that the one wrong value is the only problem.
VALID_BODIES = {
    "requests_create": {"profile": "test-db", "duration": "1h", "reason": "INC-1",
                        "ticket": "INC-1", "ssh_public_key": "", "start_at": None},
    "requests_break_glass": {"profile": "test-db", "duration": "1h", "reason": "down",
                             "ticket": "INC-1", "otp": "123456"},
    "requests_cancel": {"reason": "not needed"},
    "requests_approve": {"otp": "123456", "comment": "ok"},
    "requests_deny": {"otp": "123456", "reason": "no"},
    "grants_revoke": {"reason": "done"},
    "grants_extend": {"duration": "30m", "reason": "more"},
    "grants_reveal": {"otp": "123456"},
    "locks_create": {"scope": "user", "subject": "alice", "reason": "x", "duration": "1h",
                     "otp": "123456"},
    "locks_lift": {"reason": "x", "otp": "123456"},
}  # fmt: skip
# Who calls: the requester, an approver for decisions, the security role for locks.
CALLER = {"requests_approve": "bob", "requests_deny": "bob", "locks_create": "carol",
          "locks_lift": "carol"}  # fmt: skip


def body_schema(operation: dict) -> dict:
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return SCHEMA["components"]["schemas"][reference.rsplit("/", 1)[1]]


def string_fields() -> list[tuple[str, str, str, bool]]:
    """(operation id, path, field, whether null is allowed) for each string field."""
    found = []
    for path, operations in SCHEMA["paths"].items():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            for field, spec in body_schema(operation)["properties"].items():
                if spec.get("type") == "string":
                    nullable = spec.get("nullable", False)
                    found.append((operation["operationId"], path, field, nullable))
    return found


STRING_FIELDS = string_fields()


def test_every_operation_with_a_body_is_walked():
    assert {operation for operation, *_ in STRING_FIELDS} == set(VALID_BODIES)
    assert len(STRING_FIELDS) >= 15


@pytest.fixture
def objects(people, submit, step_up):
    pending = submit(people.alice)
    approved = submit(people.alice, slug="vault-token")
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=approved.id, approver=people.bob, info=WEB)
    lock = lock_behind_its_back(people.erin, scope="user", user=people.charlie)
    return {
        "request_id": str(pending.id),
        "grant_id": str(Grant.objects.get(request=approved).id),
        "lock_id": str(lock.pk),
    }


def state() -> tuple:
    return (
        list(AuditEvent.objects.values_list("seq", flat=True)),
        list(AccessRequest.objects.order_by("id").values_list("id", "status", "reason")),
        list(Grant.objects.order_by("id").values_list("id", "status", "expires_at")),
        list(Lock.objects.order_by("id").values_list("id", "ended_at", "lift_proposed_at")),
    )


@pytest.mark.parametrize(
    ("operation", "path", "field", "nullable"),
    STRING_FIELDS,
    ids=[f"{operation}.{field}" for operation, _, field, _ in STRING_FIELDS],
)
def test_a_value_that_is_not_a_string_is_refused(
    api, people, objects, operation, path, field, nullable
):
    client = api(getattr(people, CALLER.get(operation, "alice")))
    url = path.format(**objects)
    before = state()
    for value in NOT_STRINGS:
        if value is None and nullable:
            continue
        response = client.post(url, {**VALID_BODIES[operation], field: value}, format="json")
        assert response.status_code == 400, (value, response.content)
        assert list(response.json()["error"]["fields"]) == [field], value
        assert state() == before, value


def test_the_message_says_what_was_sent(api, people, objects):
    response = api(people.alice).post(
        f"/api/v1/requests/{objects['request_id']}/cancel/", {"reason": 0}, format="json"
    )
    assert response.json()["error"]["fields"] == {"reason": "Must be a string, not a number."}
