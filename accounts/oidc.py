"""OpenID Connect sign-in: users by their IdP username, groups from a claim."""

from django.conf import settings
from django.contrib.auth.models import Group
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


def username_from_claims(claims: dict) -> str:
    return (claims.get("preferred_username") or claims.get("email") or "")[:150]


def groups_from_claims(claims: dict, claim: str, mapping: dict[str, str]) -> set[str]:
    """The Airlock groups a user's IdP groups map to (unmapped IdP groups are ignored)."""
    idp_groups = claims.get(claim) or []
    if isinstance(idp_groups, str):
        idp_groups = [idp_groups]
    return {mapping[group] for group in idp_groups if group in mapping}


class AirlockOIDCBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims):
        username = username_from_claims(claims)
        if not username:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(username=username)

    def verify_claims(self, claims) -> bool:
        return bool(username_from_claims(claims)) and super().verify_claims(claims)

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(
            username_from_claims(claims), email=claims.get("email", "")
        )
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        mapping = settings.AIRLOCK_OIDC_GROUP_MAP
        wanted = groups_from_claims(claims, settings.AIRLOCK_OIDC_GROUPS_CLAIM, mapping)
        managed = Group.objects.filter(name__in=set(mapping.values()))
        user.groups.remove(*[g for g in managed if g.name not in wanted])
        user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in sorted(wanted)])
        return user
