"""Every change of who may do what is in the audit chain, whatever made it.

Services record what happened in words (`mfa.enrolled`, `catalog.synced`).
These receivers also record what changed in the data, for the models that
decide who may do what (accounts, groups, MFA devices, API tokens, OIDC links,
the catalog's profiles and state, time zones, third parties and access reviews'
removals, and Slack links, which the Slack
app registers with `watch`), on every path that goes through the ORM: the
admin, a management command, a shell. Each event names the actor (the
signed-in user of the web request or API call, else the command that ran),
the object, and the fields changed with their old and new values; secret
fields only say that they changed. What bypasses the ORM's signals
(`QuerySet.update`, `bulk_create`, raw SQL) is not seen here: docs/SECURITY.md.
"""

import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.http import HttpRequest

from accounts.models import (
    ApiToken,
    Authenticator,
    BackupCode,
    OidcIdentity,
    Preferences,
    ScimAccount,
)
from audit import trail
from audit.actions import data_action
from audit.trail import AUDIT_SOURCE_ATTRIBUTE, request_info
from broker.models import AccessProfile, CatalogState, ExternalAccess, Lock, ReviewRemoval

# The web request or API call being served, if any (set by AuditContextMiddleware).
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


@dataclass(frozen=True)
class Watched:
    kind: str  # the audit action names data.<kind>.created, .changed, .deleted
    ignored: frozenset[str] = frozenset()  # bookkeeping that changes on every use
    secret: frozenset[str] = frozenset()  # recorded as "(set)" / "(changed)", never the value
    deletions: bool = True
    names: tuple[str, ...] = field(default=())  # fields that name the object when deleted
    # A membership relation whose members a deletion takes with it, named in its event.
    members: str = ""


User = get_user_model()
WATCHED: dict[type[models.Model], Watched] = {
    User: Watched("account", frozenset({"last_login"}), frozenset({"password"}),
                  names=("username",), members="groups"),
    Group: Watched("group", names=("name",), members="user_set"),
    Authenticator: Watched(
        "mfa_device",
        frozenset({"last_t", "drift", "throttling_failure_timestamp",
                   "throttling_failure_count", "last_used_at", "created_at"}),
        frozenset({"encrypted_key"}), names=("user", "name"),
    ),
    # A backup code planted is an MFA factor planted; removing them takes nothing away.
    BackupCode: Watched("backup_code", frozenset({"used_at"}), frozenset({"code_hash"}),
                        deletions=False),
    ApiToken: Watched("api_token", frozenset({"last_used_at"}), frozenset({"token_hash"}),
                      names=("user", "name", "prefix")),
    OidcIdentity: Watched("oidc_link", names=("user", "issuer", "subject")),
    ScimAccount: Watched("scim_account", names=("user", "external_id")),
    Preferences: Watched("preferences", names=("user",)),
    AccessProfile: Watched("profile", frozenset({"updated_at", "created_at"}), names=("slug",)),
    CatalogState: Watched("catalog_state", frozenset({"synced_at"})),
    # Who may act depends on locks too: a change behind the lifecycle's back is seen.
    Lock: Watched("lock", names=("scope", "user", "profile", "target")),
    # A third party's sponsor, contract and profiles, and a review's removals,
    # decide who may ask for what as much as groups do.
    ExternalAccess: Watched("external_access", frozenset({"reminded_days"}),
                            frozenset({"invitation_sha256"}), names=("user", "company")),
    ReviewRemoval: Watched("review_removal", names=("person", "profile", "group_name")),
}  # fmt: skip
# through table -> (the owner's kind, the relation's name on the owner)
MEMBERSHIPS = {
    User.groups.through: ("account", "groups"),
    User.user_permissions.through: ("account", "user_permissions"),
    Group.permissions.through: ("group", "permissions"),
    ExternalAccess.profiles.through: ("external_access", "profiles"),
}


class AuditContextMiddleware:
    """Remember the request being served, so a change names who made it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def _who() -> tuple[Any, trail.RequestInfo, dict[str, Any]]:
    """The actor, where the change came from, and (outside a request) which command."""
    request = current_request.get()
    # DRF's token authentication sets the user on the underlying request too.
    user = getattr(request, "user", None)
    if request is not None:
        # A surface that is neither (Slack's endpoint) names its own channel.
        source = getattr(request, AUDIT_SOURCE_ATTRIBUTE, None) or (
            "api" if request.path.startswith("/api/") else "web"
        )
        actor = user if user is not None and user.is_authenticated else None
        return actor, request_info(request, source), {}
    command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:2]]) if sys.argv else ""
    return None, trail.SYSTEM, {"via": command or "python"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    return value


def _values(instance: models.Model, watched: Watched) -> dict[str, Any]:
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if f.attname not in watched.ignored and not f.primary_key
    }


def _record(action: str, target: models.Model, data: dict[str, Any]) -> None:
    actor, info, context = _who()
    # Inside the change's own transaction when there is one (the admin's views
    # are atomic); otherwise (autocommit, a shell) right after it, in its own.
    with transaction.atomic():
        trail.record(action=action, info=info, actor=actor, target=target,
                     data={**data, **context})  # fmt: skip


def _remember_before(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    watched = WATCHED[sender]
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and set(update_fields) <= watched.ignored:
        return  # bookkeeping only (a sign-in's last_login): nothing to compare
    before = sender._base_manager.filter(pk=instance.pk).values(*_values(instance, watched)).first()
    instance._audit_before = before


def _saved(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    watched = WATCHED[sender]
    if raw:
        return
    now = _values(instance, watched)
    if created:
        fields = {
            name: ("(set)" if value else "(empty)") if name in watched.secret else _plain(value)
            for name, value in now.items()
        }
        _record(data_action(watched.kind, "created"), instance, {"fields": fields})
        return
    before = instance.__dict__.pop("_audit_before", None)
    if before is None:
        return
    changed = {}
    for name, value in now.items():
        old = before.get(name)
        if old == value:
            continue
        if name in watched.secret:
            changed[name] = "(changed)"
        elif isinstance(value, dict | list):
            changed[name] = "(changed)"  # the catalog's spec: catalog.synced has its sha256
        else:
            changed[name] = [_plain(old), _plain(value)]
    if changed:
        _record(data_action(watched.kind, "changed"), instance, {"fields": changed})


def _remember_members(sender, instance, **kwargs) -> None:
    """Before a deletion takes its memberships (no m2m signal says so)."""
    relation = WATCHED[sender].members
    if relation:
        instance._audit_members = sorted(str(m) for m in getattr(instance, relation).all())


def _deleted(sender, instance, **kwargs) -> None:
    watched = WATCHED[sender]
    if watched.deletions:
        was = {name: _plain(getattr(instance, name, None)) for name in watched.names}
        if watched.members:
            was[watched.members] = instance.__dict__.pop("_audit_members", [])
        _record(data_action(watched.kind, "deleted"), instance, {"was": was})


def _membership(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """Group memberships and permissions, from either side and by any method."""
    owner_kind, what = MEMBERSHIPS[sender]
    # A clear is recorded before it happens, while there is still something to name.
    verb = {"post_add": "added", "post_remove": "removed", "pre_clear": "removed"}.get(action)
    if verb is None:
        return
    if action == "pre_clear":
        relation = getattr(instance, what if not reverse else _reverse_name(sender, instance))
        pk_set = set(relation.values_list("pk", flat=True))
    if not pk_set:
        return
    if not reverse:
        named = sorted(str(obj) for obj in model._base_manager.filter(pk__in=pk_set))
        _record(data_action(owner_kind, f"{what}_{verb}"), instance, {what: named})
        return
    # From the other side (group.user_set.add(...)): one event per owner changed.
    for owner in model._base_manager.filter(pk__in=pk_set):
        _record(data_action(owner_kind, f"{what}_{verb}"), owner, {what: [str(instance)]})


def _reverse_name(sender, instance) -> str:
    """The accessor on `instance` (the reverse side) for this membership table."""
    for relation in instance._meta.related_objects:
        if relation.many_to_many and relation.through is sender:
            return relation.get_accessor_name()
    raise LookupError(sender)


def watch(model: type[models.Model], watched: Watched) -> None:
    """Record every change of `model` (an app that lives above the core, such as
    Slack's identity links, calls this from its ready())."""
    WATCHED[model] = watched
    uid = f"{model._meta.label}"
    pre_save.connect(_remember_before, sender=model, dispatch_uid=f"audit-pre-{uid}")
    post_save.connect(_saved, sender=model, dispatch_uid=f"audit-post-{uid}")
    pre_delete.connect(_remember_members, sender=model, dispatch_uid=f"audit-members-{uid}")
    post_delete.connect(_deleted, sender=model, dispatch_uid=f"audit-delete-{uid}")


def connect() -> None:
    for model, watched in list(WATCHED.items()):
        watch(model, watched)
    for through in MEMBERSHIPS:
        m2m_changed.connect(_membership, sender=through, dispatch_uid=f"audit-m2m-{through}")
