"""Standing follows every change of who may request what, whatever makes it:
the admin, the ORM from a shell, OIDC group sync, sync_catalog. The check runs
once the change commits, so a catalog sync that moves people between groups is
judged on its result, not half-way."""

import logging
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_delete
from django.dispatch import receiver

from broker import lifecycle
from broker.models import AccessProfile
from broker.policy.reviews import kept_out_of

logger = logging.getLogger(__name__)

User = get_user_model()


def _enforce_after_commit(**scope) -> None:
    transaction.on_commit(partial(lifecycle.access_enforce_standing, **scope))


@receiver(m2m_changed, sender=User.groups.through)
def group_membership_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if not reverse:
        _enforce_after_commit(user_ids=[instance.pk])
    else:
        # A group lost members: those removed, or (cleared) anyone who was in it.
        _enforce_after_commit(user_ids=list(pk_set) if pk_set else None)


@receiver(m2m_changed, sender=User.groups.through)
def kept_out_by_a_review(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Whatever adds someone back to a group an access review removed them from
    (OIDC or SCIM group sync, the admin, a shell), they are taken out again until
    the security role lifts the removal."""
    if action != "post_add" or not pk_set:
        return
    pairs = (
        [(instance.pk, pk) for pk in pk_set]
        if not reverse
        else [(pk, instance.pk) for pk in pk_set]
    )
    for user_id, group_id in pairs:
        group = Group.objects.filter(pk=group_id).first()
        if group is not None and user_id in kept_out_of(group.name):
            logger.warning("user %s kept out of group %s by an access review", user_id, group.name)
            group.user_set.remove(user_id)


@receiver(post_save, sender=User)
def account_saved(sender, instance, created, update_fields, **kwargs) -> None:
    # Disabled, or renamed: the catalog's requesters.users names accounts by username.
    if created or (update_fields and not {"is_active", "username"} & set(update_fields)):
        return
    _enforce_after_commit(user_ids=[instance.pk])


@receiver(post_save, sender=Group)
def group_saved(sender, instance, created, **kwargs) -> None:
    # Renamed: the catalog names groups, so its members may have lost their standing,
    # and a name an access review keeps someone out of cannot be taken by renaming.
    if not created:
        kept = kept_out_of(instance.name)
        if back := [pk for pk in instance.user_set.values_list("pk", flat=True) if pk in kept]:
            instance.user_set.remove(*back)
        _enforce_after_commit(user_ids=list(instance.user_set.values_list("pk", flat=True)))


@receiver(pre_delete, sender=Group)
def group_deleted(sender, instance, **kwargs) -> None:
    # Its memberships go with it without an m2m_changed signal: note the members now.
    _enforce_after_commit(user_ids=list(instance.user_set.values_list("pk", flat=True)))


@receiver(post_save, sender=AccessProfile)
def profile_saved(sender, instance, created, **kwargs) -> None:
    if not created:
        _enforce_after_commit(profile_ids=[instance.pk])
