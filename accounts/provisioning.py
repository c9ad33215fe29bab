"""Provisioning from the identity provider (SCIM, accounts/scim.py): accounts and
groups created, changed, disabled and deleted as the IdP says.

What a disabled account loses follows from the change itself, whatever made
it: its live grants and pending requests (broker/signals.py), its API tokens
and web sessions (accounts/signals.py), its Slack links (the Slack app). Each
change is in the audit trail as a `data.*` event with source `scim`
(broker/model_audit.py). A password in a payload is never stored: people sign
in through single sign-on.
"""

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Authenticator, OidcIdentity, ScimAccount
from lib.text import has_control_characters

logger = logging.getLogger(__name__)
User = get_user_model()
MAX_NAME = 150


class ProvisioningError(Exception):
    """Refused, with the HTTP status and SCIM error type to answer with."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


@dataclass(frozen=True)
class UserFields:
    username: str
    email: str
    first_name: str
    last_name: str
    active: bool
    external_id: str
    # The manager's id as the IdP gives it: None leaves it as it is, "" clears it.
    manager_id: str | None = None


def managed_users():
    """The accounts the identity provider manages: not staff nor superusers (the
    admin's), not deleted by it, and not third parties (their sponsor's; the
    broker keeps them, reached here by its relation's name, not an import)."""
    return User.objects.filter(is_staff=False, is_superuser=False).exclude(
        Q(scim__deleted_at__isnull=False) | Q(external_access__isnull=False)
    )


def is_id(text: str) -> bool:
    """Airlock's ids: ASCII digits ("²" is a digit to str.isdigit), within bigint."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def scim_user_create(fields: UserFields):
    _check_username(fields.username)
    _check_text(fields)
    with transaction.atomic():
        existing = User.objects.select_for_update().filter(username=fields.username).first()
        if existing is not None:
            deleted = ScimAccount.objects.filter(
                user=existing, deleted_at__isnull=False, external_id=fields.external_id
            ).exclude(external_id="")
            if existing.is_staff or existing.is_superuser or not deleted.exists():
                # A userName an IdP gives again may be someone else's now: only the
                # same person (the same externalId) brings a deleted account back.
                raise ProvisioningError(409, "userName is taken", "uniqueness")
            deleted.update(deleted_at=None)
            return _save_user(existing, fields)
        user = User(username=fields.username)
        user.set_unusable_password()
        return _save_user(user, fields)


def scim_user_update(user, fields: UserFields):
    _check_username(fields.username)
    _check_text(fields)
    with transaction.atomic():
        taken = User.objects.filter(username=fields.username).exclude(pk=user.pk).exists()
        if taken:
            raise ProvisioningError(409, "userName is taken", "uniqueness")
        return _save_user(User.objects.select_for_update().get(pk=user.pk), fields)


def scim_user_delete(user) -> None:
    """The account stays, disabled, so that the trail keeps naming it; what it held
    (groups, MFA devices, the single sign-on binding) goes, so that it brings back
    nothing if it is ever created again."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = False
        user.save()
        user.groups.clear()
        for held in (Authenticator, OidcIdentity):
            for row in held.objects.filter(user=user):
                row.delete()  # one by one: each deletion is an audit event
        link, _ = ScimAccount.objects.get_or_create(user=user)
        link.deleted_at = timezone.now()
        link.save()


def _save_user(user, fields: UserFields):
    user.username, user.email = fields.username, fields.email[:254]
    user.first_name, user.last_name = fields.first_name[:150], fields.last_name[:150]
    user.is_active = fields.active
    user.save()
    link, _ = ScimAccount.objects.get_or_create(user=user)
    manager = link.manager if fields.manager_id is None else _manager(user, fields.manager_id)
    if (link.external_id, link.manager) != (fields.external_id[:255], manager):
        link.external_id, link.manager = fields.external_id[:255], manager
        link.save()
    return user


def _manager(user, manager_id: str):
    """The account the IdP names as `user`'s manager. One SCIM does not manage (a
    staff account, a deleted one, one not provisioned yet) or the person
    themselves leaves them without one: an IdP that pushes reports before their
    manager must not have the report refused, and a guessed id must not make
    anyone a reviewer."""
    if not manager_id:
        return None
    if not is_id(manager_id):
        raise ProvisioningError(400, "manager: the value is a user id", "invalidValue")
    manager = managed_users().filter(pk=manager_id).exclude(pk=user.pk).first()
    if manager is None:
        logger.warning("SCIM: %s's manager %s is no account SCIM manages: none", user, manager_id)
    return manager


def _check_username(username: str) -> None:
    try:
        if not username or len(username) > MAX_NAME:
            raise ValidationError("a userName of 1 to 150 characters")
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise ProvisioningError(400, f"userName: {exc.messages[0]}", "invalidValue") from None


def scim_group_create(name: str, member_ids: list[str]) -> Group:
    _check_group_name(name)
    with transaction.atomic():
        if Group.objects.filter(name=name).exists():
            raise ProvisioningError(409, "displayName is taken", "uniqueness")
        group = Group.objects.create(name=name)
        group.user_set.set(_members(member_ids))
    return group


def scim_group_update(group: Group, name: str, member_ids: list[str]) -> Group:
    """Rename and set the members the IdP manages; the others (staff, third
    parties), which SCIM does not see, stay as they are."""
    _check_group_name(name)
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        if name != group.name:
            _check_unmanaged_members(group, "renamed")
            if Group.objects.filter(name=name).exists():
                raise ProvisioningError(409, "displayName is taken", "uniqueness")
            group.name = name
            group.save()
        unmanaged = group.user_set.exclude(pk__in=managed_users().values("pk"))
        group.user_set.set([*_members(member_ids), *unmanaged])
    return group


def scim_group_delete(group: Group) -> None:
    with transaction.atomic():
        _check_unmanaged_members(group, "deleted")
        group.delete()


def _check_unmanaged_members(group: Group, doing: str) -> None:
    """Staff and superusers are not the IdP's: it neither renames nor deletes the
    groups that give them their roles (it still sets the other members)."""
    if (
        group.user_set.filter(is_staff=True).exists()
        or group.user_set.filter(is_superuser=True).exists()
    ):
        raise ProvisioningError(
            409, f"the group has staff members, which the IdP does not manage: not {doing}"
        )


def _check_group_name(name: str) -> None:
    if not name or len(name) > MAX_NAME:
        raise ProvisioningError(400, "displayName: 1 to 150 characters", "invalidValue")
    if has_control_characters(name):
        raise ProvisioningError(400, "displayName: plain text only", "invalidValue")


def _check_text(fields: UserFields) -> None:
    for field in ("email", "first_name", "last_name", "external_id"):
        if has_control_characters(getattr(fields, field)):
            raise ProvisioningError(400, f"{field}: plain text only", "invalidValue")


def _members(member_ids: list[str]) -> list:
    ids = set(member_ids)
    if not all(is_id(pk) for pk in ids):
        raise ProvisioningError(400, "members: each value is a user id", "invalidValue")
    found = list(managed_users().filter(pk__in=ids))
    missing = ids - {str(user.pk) for user in found}
    if missing:
        raise ProvisioningError(
            400, f"members: no such user {', '.join(sorted(missing))}", "invalidValue"
        )
    return found
