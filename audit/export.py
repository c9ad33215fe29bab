"""Audit events as CSV, JSON Lines or OCSF, streamed row by row so that any
number of events fits in constant memory."""

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from itertools import islice
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from audit import trail
from audit.actions import Action
from audit.models import AuditEvent

CSV_COLUMNS = [
    "seq", "created_at", "actor", "actor_id", "actor_external", "action", "target_type",
    "target_id", "target_external", "from_status", "to_status", "reason", "source", "ip",
    "user_agent", "data", "prev_hash", "hash",
]  # fmt: skip
# A cell starting with one of these is a formula to spreadsheet programs; the
# reason and ticket fields are typed by users, so neutralise them with a leading
# quote. A value that starts with the quote itself gets one too, so that reading
# drops exactly one quote from every cell starting with it and gets back what was
# written: an exported file must verify against the chain's hashes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_ESCAPE = "'"
OCSF_VERSION = "1.3.0"


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """An ISO date (the whole day: its start, or with end_of_day its end) or an
    ISO date-time, in UTC; naive times are UTC. ValueError names what is wrong."""
    try:
        day = parse_date(text)
        parsed = (
            datetime.combine(day, time.max if end_of_day else time.min)
            if day is not None
            else parse_datetime(text)
        )
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{text!r} is not a date or date-time (ISO 8601, e.g. 2026-11-28)")
    try:
        # In UTC, as exports and manifests state it: 0001-01-01T00:00+05:00 is not a day
        # Python's calendar holds.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range once in UTC") from None


def parse_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """A since/until pair as moments (either may be empty): a date covers its whole
    day. ValueError names what is wrong; each caller says it its own way."""
    return (
        parse_moment(since, end_of_day=False) if since else None,
        parse_moment(until, end_of_day=True) if until else None,
    )


def open_private(path: str, mode: str = "w"):
    """Open a new file readable by its owner only: audit exports and access reports
    name people and addresses."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), mode)


class Echo:
    def write(self, value: str) -> str:
        return value


def json_text(value: Any, *, line: bool = False) -> str:
    """JSON with sorted keys, as exports write it. orjson encodes four to eight
    times faster than the standard library (bench/README.md, exports); a number
    beyond 64 bits, which it refuses, goes through the standard library. The
    hash chain's own canonical form stays `audit.payload_hash`'s."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text + "\n" if line else text


def csv_cell(value) -> str:
    if value is None:
        return ""
    text = json_text(value) if isinstance(value, dict) else str(value)
    return CSV_ESCAPE + text if text.startswith((*FORMULA_STARTS, CSV_ESCAPE)) else text


# Rows take the records of `audit.event_records`: every hashed field as the chain
# hashed it, plus the hash, so that each exported event can be re-verified.
Record = dict[str, Any]


def third_party_companies() -> dict[int, str]:
    """Third parties' accounts and their companies. The broker keeps who is one
    (`ExternalAccess`, reached here by its relation name, not an import: the
    audit trail sits below the broker); an ended contract keeps its row."""
    people = get_user_model().objects.filter(external_access__isnull=False)
    return dict(people.values_list("pk", "external_access__company"))


def export_records(events: QuerySet[AuditEvent]) -> Iterator[Record]:
    """The events an export writes, in order: each as the chain hashed it, and
    marked where the person acting (`actor_external`) or the account acted on
    (`target_external`) is a third party: their company, else "". The marks are
    not hashed: they say what Airlock knows at export time, and a verifier
    ignores them."""
    companies = third_party_companies()
    for record in trail.event_records(events.order_by("seq")):
        target = record["target_id"]
        about_account = record["target_type"] == "user" and target.isascii() and target.isdigit()
        record["actor_external"] = companies.get(record["actor_id"], "")
        record["target_external"] = companies.get(int(target), "") if about_account else ""
        yield record


def csv_rows(records: Iterable[Record]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for record in records:
        yield writer.writerow([csv_cell(record[column]) for column in CSV_COLUMNS])


def jsonl_rows(records: Iterable[Record]) -> Iterator[str]:
    for record in records:
        yield json_text(record, line=True)


# OCSF 1.3.0. Each action maps to a class and one of its activities, with the
# attributes that class requires filled from the event (the table in README,
# "The audit trail"); tests/test_ocsf_export.py checks every line against the
# schema of its class.
LOG_NAME = "airlock-audit"
PRODUCT = {"name": "Airlock", "vendor_name": "Airlock"}
AIRLOCK_SERVICE = {"name": "Airlock"}  # what people sign in to
AIRLOCK_ACTOR = {"app_name": "Airlock"}  # who acts when no signed-in person does
UNKNOWN, SUCCESS, FAILURE = 0, 1, 2  # status_id (for a finding, 1 is New)
INFORMATIONAL, LOW, MEDIUM, HIGH = 1, 2, 3, 4  # severity_id


@dataclass(frozen=True)
class OcsfClass:
    uid: int
    name: str
    category_uid: int
    category_name: str
    # Which of the attributes any event may carry (actor, src_endpoint,
    # http_request) the class has.
    context: frozenset[str]
    # The profiles that give it some of them (User Access Management has `actor`
    # only through the host profile): its events declare them in metadata.profiles.
    profiles: tuple[str, ...] = ()


IAM = (3, "Identity & Access Management")
EVERY_CONTEXT = frozenset({"actor", "src_endpoint", "http_request"})
BASE_EVENT = OcsfClass(0, "Base Event", 0, "Uncategorized", frozenset())
EVENT_LOG = OcsfClass(
    1008, "Event Log Activity", 1, "System Activity", frozenset({"actor", "src_endpoint"})
)
DETECTION_FINDING = OcsfClass(
    2004, "Detection Finding", 2, "Findings", frozenset({"actor"}), ("host",)
)
ACCOUNT_CHANGE = OcsfClass(3001, "Account Change", *IAM, EVERY_CONTEXT)
AUTHENTICATION = OcsfClass(3002, "Authentication", *IAM, EVERY_CONTEXT)
ENTITY_MANAGEMENT = OcsfClass(3004, "Entity Management", *IAM, EVERY_CONTEXT, ("host",))
USER_ACCESS = OcsfClass(3005, "User Access Management", *IAM, EVERY_CONTEXT, ("host",))
GROUP_MANAGEMENT = OcsfClass(3006, "Group Management", *IAM, EVERY_CONTEXT, ("host",))


@dataclass(frozen=True)
class Requested:
    """Whose access a request or grant event is about, and to which profile, as the
    request's own `request.submitted` event recorded them (see `requested_in`)."""

    user: dict[str, str]
    profile: str


# The attributes a class requires beyond the common ones, from the event (and,
# for grants and requests, what was requested); None when they cannot be filled.
Attributes = Callable[[Record, Requested | None], dict[str, Any] | None]


@dataclass(frozen=True)
class OcsfMapping:
    ocsf_class: OcsfClass
    activity_id: int
    activity_name: str  # the class's own name for it, or ours for activity 99 (Other)
    attributes: Attributes
    status_id: int = SUCCESS
    severity_id: int = INFORMATIONAL
    # With nobody signed in, Airlock is the actor (a worker, a command, a policy),
    # but for a failed sign-in: a stranger asked for that one.
    airlock_acts: bool = True


def _person(record: Record) -> dict[str, Any] | None:
    """The signed-in person who acted, as an OCSF user; a third party with their
    company as its organisation."""
    if not record["actor"]:
        return None
    person: dict[str, Any] = {"name": record["actor"], "uid": str(record["actor_id"])}
    if company := record.get("actor_external"):
        person["org"] = {"name": company}
    return person


def _signed_in(record: Record, _: Requested | None) -> dict[str, Any] | None:
    user = _person(record)
    return {"user": user, "service": AIRLOCK_SERVICE} if user else None


def _sign_in_tried(record: Record, _: Requested | None) -> dict[str, Any]:
    # Nobody signed in: the user is the name that was tried.
    return {"user": {"name": record["data"].get("username", "")}, "service": AIRLOCK_SERVICE}


def _stepped_up(record: Record, _: Requested | None) -> dict[str, Any] | None:
    user = _person(record)
    return {"user": user, "service": AIRLOCK_SERVICE, "is_mfa": True} if user else None


def _own_account(record: Record, _: Requested | None) -> dict[str, Any] | None:
    user = _person(record)
    return {"user": user} if user else None


def _access(_: Record, requested: Requested | None) -> dict[str, Any] | None:
    return {"user": requested.user, "privileges": [requested.profile]} if requested else None


def _alert(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    uid, kind = str(data.get("alert", record["hash"])), str(data.get("kind", ""))
    return {"finding_info": {"uid": uid, "title": record["reason"], "types": [kind]}}


def _orphans_found(record: Record, _: Requested | None) -> dict[str, Any]:
    title = "Credentials live at their source without a grant"
    return {"finding_info": {"uid": record["hash"], "title": title, "types": ["orphan"]}}


def _orphan_revoked(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    return {
        "entity": {"type": "Credential", "name": data.get("kind", ""), "data": data.get("handle")}
    }


def _catalog(record: Record, _: Requested | None) -> dict[str, Any]:
    version = record["data"].get("sha256", "")
    return {"entity": {"type": "Catalog", "name": "catalog", "version": version}}


def _signing_key(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    return {"entity": {"type": "Signing Key", "uid": data.get("key_id", ""), "data": data}}


def _lock(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    entity = {"type": "Lock", "uid": record["target_id"], "name": data.get("subject", "")}
    return {"entity": {**entity, "data": data}}


def _access_review(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    entity = {"type": "Access Review", "uid": record["target_id"], "name": data.get("name", "")}
    return {"entity": {**entity, "data": data}}


def _external(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    entity = {
        "type": "External Account",
        "uid": record["target_id"],
        "name": data.get("external", ""),
    }
    return {"entity": {**entity, "data": data}}


def _risk_model(record: Record, _: Requested | None) -> dict[str, Any]:
    data = record["data"]
    entity = {"type": "Risk Model", "uid": record["target_id"], "name": "usual access"}
    return {"entity": {**entity, "version": record["target_id"], "data": data}}


def _audit_log(_: Record, __: Requested | None) -> dict[str, Any]:
    return {"log_name": LOG_NAME, "log_provider": "Airlock"}


def _nothing(_: Record, __: Requested | None) -> dict[str, Any]:
    return {}


def _named(record: Record, field: str) -> dict[str, str]:
    """{"name": ...} when a data.* event names its object (created or deleted)."""
    data = record["data"]
    name = data.get("fields", {}).get(field) or data.get("was", {}).get(field)
    return {"name": name} if isinstance(name, str) else {}


def _account(record: Record, _: Requested | None) -> dict[str, Any]:
    return {"user": {"uid": record["target_id"], **_named(record, "username")}}


def _account_privileges(record: Record, _: Requested | None) -> dict[str, Any]:
    # data.account.groups_added names the groups, .user_permissions_added the permissions.
    granted = record["data"].get("groups", record["data"].get("user_permissions", []))
    return {"user": {"uid": record["target_id"]}, "privileges": list(granted)}


def _group_privileges(record: Record, _: Requested | None) -> dict[str, Any]:
    granted = record["data"].get("permissions", [])
    return {"group": {"uid": record["target_id"]}, "privileges": list(granted)}


def _entity(record: Record, _: Requested | None) -> dict[str, Any]:
    kind = record["action"].split(".")[1]  # data.<kind>.<verb>
    name = _named(record, "name") or _named(record, "slug")  # a profile's is its slug
    return {"entity": {"uid": record["target_id"], "type": kind, **name}}


def _mapping(
    ocsf_class: OcsfClass, activity: tuple[int, str], attributes: Attributes, **kw
) -> OcsfMapping:
    return OcsfMapping(ocsf_class, *activity, attributes, **kw)


LOGON, STEP_UP = (1, "Logon"), (99, "MFA Step-Up")
ASSIGN, REVOKE = (1, "Assign Privileges"), (2, "Revoke Privileges")
CREATE = (1, "Create")


def _user_access(activity: tuple[int, str], **kw) -> OcsfMapping:
    return _mapping(USER_ACCESS, activity, _access, **kw)


def _account_change(activity: tuple[int, str], **kw) -> OcsfMapping:
    return _mapping(ACCOUNT_CHANGE, activity, _own_account, **kw)


OCSF_MAPPINGS: dict[str, OcsfMapping] = {
    # Signing in and MFA step-up: the person authenticating to Airlock.
    Action.AUTH_LOGIN: _mapping(AUTHENTICATION, LOGON, _signed_in),
    Action.AUTH_LOGIN_FAILED: _mapping(
        AUTHENTICATION,
        LOGON,
        _sign_in_tried,
        status_id=FAILURE,
        severity_id=LOW,
        airlock_acts=False,
    ),
    Action.MFA_VERIFIED: _mapping(AUTHENTICATION, STEP_UP, _stepped_up),
    Action.MFA_FAILED: _mapping(
        AUTHENTICATION, STEP_UP, _stepped_up, status_id=FAILURE, severity_id=LOW
    ),
    # The person's own account: MFA factors, API tokens, linked identities.
    Action.MFA_ENROLLED: _account_change((10, "MFA Factor Enable")),
    Action.MFA_ENROL_FAILED: _account_change((10, "MFA Factor Enable"), status_id=FAILURE),
    Action.MFA_REMOVED: _account_change((11, "MFA Factor Disable")),
    Action.MFA_BACKUP_CODES_REGENERATED: _account_change((99, "MFA Backup Codes Regenerated")),
    Action.API_TOKEN_CREATED: _account_change((99, "API Token Created")),
    Action.API_TOKEN_REVOKED: _account_change((99, "API Token Revoked")),
    Action.OIDC_LINKED: _account_change((99, "Single Sign-On Identity Linked")),
    Action.SLACK_LINKED: _account_change((99, "Slack Identity Linked")),
    Action.SLACK_UNLINKED: _account_change((99, "Slack Identity Unlinked")),
    # A grant gives the requester the profile's privileges, and its end takes them
    # back; each attempt that failed is a failure of the same activity.
    Action.GRANT_ACTIVATED: _user_access(ASSIGN),
    Action.GRANT_EXTENDED: _user_access(ASSIGN),
    Action.GRANT_ACTIVATION_RETRY: _user_access(ASSIGN, status_id=FAILURE, severity_id=LOW),
    Action.GRANT_FAILED: _user_access(ASSIGN, status_id=FAILURE, severity_id=LOW),
    Action.GRANT_EXTENSION_FAILED: _user_access(ASSIGN, status_id=FAILURE, severity_id=LOW),
    Action.GRANT_REVOKED: _user_access(REVOKE),
    Action.GRANT_EXPIRED: _user_access(REVOKE),
    Action.GRANT_REVOKE_RETRY: _user_access(REVOKE, status_id=FAILURE, severity_id=MEDIUM),
    Action.GRANT_REVOKE_FAILED: _user_access(REVOKE, status_id=FAILURE, severity_id=HIGH),
    # The steps on the way, which change no privilege yet: Other, named.
    Action.GRANT_SCHEDULED: _user_access((99, "Grant Scheduled")),
    Action.GRANT_EXTENSION_SCHEDULED: _user_access((99, "Extension Scheduled")),
    Action.GRANT_CREDENTIAL_REVEALED: _user_access((99, "Credential Revealed")),
    Action.GRANT_REVOKE_REQUESTED: _user_access((99, "Revocation Requested")),
    Action.GRANT_REVOKE_RETRY_REQUESTED: _user_access((99, "Revocation Retry Requested")),
    Action.REQUEST_SUBMITTED: _user_access((99, "Access Requested")),
    Action.REQUEST_BREAK_GLASS: _user_access((99, "Break-Glass Access"), severity_id=MEDIUM),
    Action.REQUEST_DECISION_APPROVE: _user_access((99, "Approval Given")),
    Action.REQUEST_DECISION_DENY: _user_access((99, "Denial Given")),
    Action.REQUEST_APPROVED: _user_access((99, "Request Approved")),
    Action.REQUEST_DENIED: _user_access((99, "Request Denied")),
    Action.REQUEST_CANCELLED: _user_access((99, "Request Cancelled")),
    Action.REQUEST_WITHDRAWN: _user_access((99, "Request Withdrawn")),
    Action.REQUEST_EXPIRED: _user_access((99, "Request Expired")),
    Action.REQUEST_REMINDER: _user_access((99, "Approvers Reminded")),
    Action.REQUEST_APPROVERS_NOTIFIED: _user_access((99, "Approvers Notified")),
    Action.REQUEST_ESCALATED: _user_access((99, "Request Escalated")),
    Action.REQUEST_LABELLED: _user_access((99, "Request Labelled")),
    Action.REVIEW_CLOSED: _user_access((99, "Break-Glass Review Closed")),
    Action.REVIEW_OVERDUE: _user_access((99, "Break-Glass Review Overdue"), severity_id=MEDIUM),
    # Findings, and what Airlock manages beside people's access.
    Action.ALERT_RAISED: _mapping(DETECTION_FINDING, CREATE, _alert, severity_id=MEDIUM),
    Action.RECONCILE_ORPHANS_FOUND: _mapping(
        DETECTION_FINDING, CREATE, _orphans_found, severity_id=HIGH
    ),
    Action.RECONCILE_ORPHAN_REVOKED: _mapping(
        ENTITY_MANAGEMENT, (4, "Delete"), _orphan_revoked, severity_id=LOW
    ),
    Action.CATALOG_SYNCED: _mapping(ENTITY_MANAGEMENT, (3, "Update"), _catalog),
    Action.RISK_MODEL_TRAINED: _mapping(ENTITY_MANAGEMENT, CREATE, _risk_model),
    # A third party's account under a sponsor: invited, accepted, reminded, ended.
    Action.EXTERNAL_INVITED: _mapping(ENTITY_MANAGEMENT, CREATE, _external),
    Action.EXTERNAL_ACCEPTED: _mapping(ENTITY_MANAGEMENT, (3, "Update"), _external),
    Action.EXTERNAL_CONTRACT_ENDING: _mapping(ENTITY_MANAGEMENT, (99, "Remind"), _external),
    Action.EXTERNAL_CONTRACT_CHANGED: _mapping(ENTITY_MANAGEMENT, (3, "Update"), _external),
    Action.EXTERNAL_ENDED: _mapping(ENTITY_MANAGEMENT, (4, "Delete"), _external),
    Action.EXTERNAL_SUSPENDED: _mapping(
        ENTITY_MANAGEMENT, (3, "Update"), _external, severity_id=MEDIUM
    ),
    Action.EXTERNAL_HANDED_OVER: _mapping(ENTITY_MANAGEMENT, (3, "Update"), _external),
    # An access review is an entity Airlock manages: started, each decision, nudges, closed.
    Action.ACCESS_REVIEW_STARTED: _mapping(ENTITY_MANAGEMENT, CREATE, _access_review),
    Action.ACCESS_REVIEW_DECIDED: _mapping(ENTITY_MANAGEMENT, (3, "Update"), _access_review),
    Action.ACCESS_REVIEW_REMINDED: _mapping(ENTITY_MANAGEMENT, (99, "Remind"), _access_review),
    Action.ACCESS_REVIEW_ESCALATED: _mapping(
        ENTITY_MANAGEMENT, (99, "Escalate"), _access_review, severity_id=LOW
    ),
    Action.ACCESS_REVIEW_CLOSED: _mapping(ENTITY_MANAGEMENT, (99, "Close"), _access_review),
    Action.ACCESS_REVIEW_REMOVAL_LIFTED: _mapping(
        ENTITY_MANAGEMENT, (3, "Update"), _access_review, severity_id=MEDIUM
    ),
    # A lock is an entity Airlock manages: placed, a lift proposed, lifted, ended by time.
    Action.LOCK_PLACED: _mapping(ENTITY_MANAGEMENT, CREATE, _lock, severity_id=HIGH),
    Action.LOCK_LIFT_PROPOSED: _mapping(
        ENTITY_MANAGEMENT, (3, "Update"), _lock, severity_id=MEDIUM
    ),
    Action.LOCK_LIFTED: _mapping(ENTITY_MANAGEMENT, (4, "Delete"), _lock, severity_id=MEDIUM),
    Action.LOCK_ENDED: _mapping(ENTITY_MANAGEMENT, (4, "Delete"), _lock),
    Action.AUDIT_EXPORTED: _mapping(EVENT_LOG, (3, "Export"), _audit_log),
    Action.AUDIT_EVIDENCE_PACK: _mapping(EVENT_LOG, (3, "Export"), _audit_log),
    Action.AUDIT_ARCHIVED: _mapping(EVENT_LOG, (4, "Archive"), _audit_log),
    Action.AUDIT_SIGNING_KEY_ADDED: _mapping(ENTITY_MANAGEMENT, CREATE, _signing_key),
}
# data.<kind>.<verb> (broker/model_audit.py): accounts and what they or groups
# are given by kind and verb; anything else (groups themselves too: Group
# Management requires a user or privileges, which a group's creation has not)
# as an entity, by verb.
DATA_MAPPINGS: dict[tuple[str, str], OcsfMapping] = {
    ("account", "created"): _mapping(ACCOUNT_CHANGE, CREATE, _account),
    ("account", "changed"): _mapping(ACCOUNT_CHANGE, (99, "Account Changed"), _account),
    ("account", "deleted"): _mapping(ACCOUNT_CHANGE, (6, "Delete"), _account),
    ("account", "groups_added"): _mapping(USER_ACCESS, ASSIGN, _account_privileges),
    ("account", "groups_removed"): _mapping(USER_ACCESS, REVOKE, _account_privileges),
    ("account", "user_permissions_added"): _mapping(USER_ACCESS, ASSIGN, _account_privileges),
    ("account", "user_permissions_removed"): _mapping(USER_ACCESS, REVOKE, _account_privileges),
    ("group", "permissions_added"): _mapping(GROUP_MANAGEMENT, ASSIGN, _group_privileges),
    ("group", "permissions_removed"): _mapping(GROUP_MANAGEMENT, REVOKE, _group_privileges),
}
ENTITY_MAPPINGS: dict[str, OcsfMapping] = {
    "created": _mapping(ENTITY_MANAGEMENT, CREATE, _entity),
    "changed": _mapping(ENTITY_MANAGEMENT, (3, "Update"), _entity),
    "deleted": _mapping(ENTITY_MANAGEMENT, (4, "Delete"), _entity),
}
# An action with no mapping (or whose class's required attributes the event
# cannot fill): a Base Event, which requires nothing of it.
UNMAPPED = OcsfMapping(BASE_EVENT, 99, "Other", _nothing, status_id=UNKNOWN)


@lru_cache(maxsize=1024)
def ocsf_mapping(action: str) -> OcsfMapping:
    if action in OCSF_MAPPINGS:
        return OCSF_MAPPINGS[action]
    prefix, _, kind_verb = action.partition(".")
    kind, _, verb = kind_verb.partition(".")
    if prefix != "data":
        return UNMAPPED
    return DATA_MAPPINGS.get((kind, verb)) or ENTITY_MAPPINGS.get(verb, UNMAPPED)


def ocsf_event(record: Record, requested: Requested | None = None) -> dict[str, Any]:
    """One event in the Open Cybersecurity Schema Framework 1.3.0, valid against the
    schema of its class with the profiles it declares. `requested`: whose access
    and which profile a grant or request event is about (`requested_in`). The
    original event rides along under `unmapped`."""
    mapping = ocsf_mapping(record["action"])
    attributes = mapping.attributes(record, requested)
    if attributes is None:
        mapping, attributes = UNMAPPED, {}
    ocsf_class = mapping.ocsf_class
    ocsf: dict[str, Any] = {
        "category_uid": ocsf_class.category_uid,
        "category_name": ocsf_class.category_name,
        "class_uid": ocsf_class.uid,
        "class_name": ocsf_class.name,
        "activity_id": mapping.activity_id,
        "activity_name": mapping.activity_name,
        "type_uid": ocsf_class.uid * 100 + mapping.activity_id,
        "time": int(datetime.fromisoformat(record["created_at"]).timestamp() * 1000),
        "severity_id": mapping.severity_id,
        "status_id": mapping.status_id,
        "message": record["action"],
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "profiles": list(ocsf_class.profiles),
            "uid": record["hash"],
            "sequence": record["seq"],
            "log_name": LOG_NAME,
        },
        **attributes,
        "unmapped": record,
    }
    person = _person(record)
    if "actor" in ocsf_class.context and (person or mapping.airlock_acts):
        ocsf["actor"] = {"user": person} if person else AIRLOCK_ACTOR
    if record["ip"] and "src_endpoint" in ocsf_class.context:
        ocsf["src_endpoint"] = {"ip": record["ip"]}
    if record["user_agent"] and "http_request" in ocsf_class.context:
        ocsf["http_request"] = {"user_agent": record["user_agent"]}
    if mapping.status_id == FAILURE and record["reason"]:
        ocsf["status_detail"] = record["reason"]
    return ocsf


# Grant and request events do not all say whose access they are about: the
# chain does. A request's `request.submitted` names its requester (the actor)
# and profile, and a grant's `grant.scheduled` names its request. The export
# looks them up for each batch of events (two queries; indexed by target).
OCSF_BATCH = 1000
REQUESTED_TARGETS = ("grant", "accessrequest")


def requested_in(records: list[Record]) -> dict[tuple[str, str], Requested]:
    """(target type, target id) -> whose access and which profile, for the grant and
    request events among `records`. The `request.submitted` and `grant.scheduled`
    events in the batch itself answer for their own requests and grants; only the
    others are looked up (a batch of submissions asks nothing)."""
    wanted: dict[str, set[str]] = {kind: set() for kind in REQUESTED_TARGETS}
    request_of: dict[str, str] = {}
    submitted: list[tuple[str, str, Any, Any]] = []
    for record in records:
        if record["target_type"] not in wanted:
            continue
        wanted[record["target_type"]].add(record["target_id"])
        data = record["data"] if isinstance(record["data"], dict) else {}
        if record["action"] == Action.GRANT_SCHEDULED and record["target_type"] == "grant":
            request_of[record["target_id"]] = data.get("request")
        elif (
            record["action"] == Action.REQUEST_SUBMITTED
            and record["target_type"] == "accessrequest"
        ):
            submitted.append(
                (record["target_id"], record["actor"], record["actor_id"], data.get("profile"))
            )
    if not any(wanted.values()):
        return {}
    if unknown_grants := wanted["grant"] - request_of.keys():
        request_of.update(
            AuditEvent.objects.filter(
                action=Action.GRANT_SCHEDULED, target_type="grant", target_id__in=unknown_grants
            ).values_list("target_id", "data__request")
        )
    asked = {request_id for request_id, *_ in submitted}
    unknown_requests = (wanted["accessrequest"] | set(request_of.values())) - asked
    if unknown_requests:
        submitted += AuditEvent.objects.filter(
            action=Action.REQUEST_SUBMITTED,
            target_type="accessrequest",
            target_id__in=unknown_requests,
        ).values_list("target_id", "actor", "actor_id", "data__profile")
    by_request = {
        request_id: Requested({"name": actor, "uid": str(actor_id)}, profile)
        for request_id, actor, actor_id, profile in submitted
        if actor and isinstance(profile, str)
    }
    found = {("accessrequest", request_id): r for request_id, r in by_request.items()}
    for grant_id, request_id in request_of.items():
        if request_id in by_request:
            found["grant", grant_id] = by_request[request_id]
    return found


def ocsf_rows(records: Iterable[Record]) -> Iterator[str]:
    records = iter(records)
    while batch := list(islice(records, OCSF_BATCH)):
        requested = requested_in(batch)
        for record in batch:
            subject = requested.get((record["target_type"], record["target_id"]))
            yield json_text(ocsf_event(record, subject), line=True)


# format -> (rows, content type, file extension)
FORMATS: dict[str, tuple[Callable[[Iterable[Record]], Iterator[str]], str, str]] = {
    "csv": (csv_rows, "text/csv", "csv"),
    "jsonl": (jsonl_rows, "application/x-ndjson", "jsonl"),
    "ocsf": (ocsf_rows, "application/x-ndjson", "ocsf.jsonl"),
}


def read_export(lines: Iterable[str], export_format: str) -> Iterator[dict[str, Any]]:
    """The events of an exported file, as the dicts the chain check takes."""
    if export_format == "csv":
        for row in csv.DictReader(lines):
            yield _from_csv(row)
        return
    for line in lines:
        if line.strip():
            record = json.loads(line)
            yield record["unmapped"] if export_format == "ocsf" else record


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        column: value.removeprefix(CSV_ESCAPE) for column, value in row.items()
    }
    record["seq"] = int(record["seq"])
    record["actor_id"] = int(record["actor_id"]) if record["actor_id"] else None
    record["ip"] = record["ip"] or None
    record["data"] = json.loads(record["data"]) if record["data"] else {}
    return record
