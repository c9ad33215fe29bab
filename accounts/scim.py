"""SCIM 2.0 (RFC 7643/7644) for the identity provider: Users and Groups pushed by
Okta, Entra ID and the like, so that joiners, movers and leavers reach Airlock.

At `/scim/v2/`, with `Authorization: Bearer $AIRLOCK_SCIM_TOKEN` (unset: SCIM
is off and every path answers 404). Payloads are read and written through
scim2-models. Writes go through accounts/provisioning.py. Staff and superuser
accounts are not the IdP's: SCIM neither sees nor changes them (as OIDC never
binds them by email).
"""

import hmac
import json
import logging
import re
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError
from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    Error,
    GroupMember,
    ListResponse,
    Meta,
    Name,
    PatchOp,
    ResourceType,
    Schema,
    ServiceProviderConfig,
)
from scim2_models import Group as ScimGroup
from scim2_models import User as CoreUser
from scim2_models.exceptions import SCIMException
from scim2_models.resources.enterprise_user import Manager

from accounts import provisioning
from accounts.provisioning import ProvisioningError
from audit.models import Source
from audit.trail import AUDIT_SOURCE_ATTRIBUTE
from lib.secrets import read_secret
from lib.text import has_control_characters

logger = logging.getLogger(__name__)
CONTENT_TYPE = "application/scim+json"
MAX_PAGE = 200
# The filters IdPs send to find a resource before creating it: `attribute eq "value"`.
EQUALS = re.compile(r'^\s*(\w+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
# IdPs send the enterprise extension (department, manager...) with users: a user
# model without it would refuse them all.
ScimUser = CoreUser[EnterpriseUser]
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER_PATHS = {f"{ENTERPRISE}:manager".lower(), f"{ENTERPRISE}:manager.value".lower()}


def _response(body: dict, status: int = 200) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


def _error(status: int, detail: str, scim_type: str | None = None) -> HttpResponse:
    error = Error(status=status, detail=detail, scim_type=scim_type)
    return _response(error.model_dump(), status)


def scim_view(view: Callable) -> Callable:
    """The bearer token, SCIM-shaped errors for everything that goes wrong, and
    the audit trail's channel (scim) for the changes made while serving it."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        expected = read_secret("AIRLOCK_SCIM_TOKEN", required=False)
        if not expected:
            return _error(404, "SCIM is not enabled here (AIRLOCK_SCIM_TOKEN)")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            logger.warning("SCIM request refused: wrong or missing bearer token")
            return _error(401, "a valid bearer token is required")
        setattr(request, AUDIT_SOURCE_ATTRIBUTE, Source.SCIM)
        try:
            return view(request, *args, **kwargs)
        except ProvisioningError as exc:
            return _error(exc.status, exc.detail, exc.scim_type)

    return wrapper


def _body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ProvisioningError(400, "the body is not JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ProvisioningError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _parse(model, body: dict, context: Context):
    try:
        return model.model_validate(body, scim_ctx=context)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ProvisioningError(400, problems, "invalidValue") from None


def _location(request: HttpRequest, kind: str, pk) -> str:
    return request.build_absolute_uri(f"/scim/v2/{kind}/{pk}")


# --- users ------------------------------------------------------------------


def _managed_users():
    return provisioning.managed_users()


def _user(pk: str):
    user = _managed_users().filter(pk=pk).first() if provisioning.is_id(pk) else None
    if user is None:
        raise ProvisioningError(404, f"no user {pk}")
    return user


def user_resource(request: HttpRequest, user) -> ScimUser:
    link = getattr(user, "scim", None)
    resource = ScimUser(
        id=str(user.pk),
        external_id=(link.external_id if link else None) or None,
        user_name=user.get_username(),
        name=Name(given_name=user.first_name or None, family_name=user.last_name or None),
        # Typed "work", which the filters IdPs write to (emails[type eq "work"]) look for.
        emails=[Email(value=user.email, primary=True, type="work")] if user.email else None,
        active=user.is_active,
        meta=Meta(
            resource_type="User",
            created=user.date_joined,
            location=_location(request, "Users", user.pk),
        ),
    )
    if link is not None and link.manager_id is not None:
        reference = _location(request, "Users", link.manager_id)
        resource[EnterpriseUser] = EnterpriseUser(
            manager=Manager(value=str(link.manager_id), ref=reference)
        )
    return resource


def _user_fields(
    resource: ScimUser, current=None, manager_id: str | None = None
) -> provisioning.UserFields:
    """What the payload says; an `active` it leaves out keeps the account as it is
    (a PUT without it must not re-enable an account disabled in Airlock), and so
    does a manager it leaves out."""
    emails = resource.emails or []
    primary = next((e for e in emails if e.primary), emails[0] if emails else None)
    name = resource.name
    return provisioning.UserFields(
        username=resource.user_name or "",
        email=str(primary.value) if primary and primary.value else "",
        first_name=(name.given_name if name else None) or "",
        last_name=(name.family_name if name else None) or "",
        active=resource.active
        if resource.active is not None
        else bool(current is None or current.is_active),
        external_id=resource.external_id or "",
        manager_id=manager_id,
    )


def _manager_value(value) -> str:
    """A manager as IdPs write it: `{"value": id}`, or Entra ID's bare id; none
    (null, "", {}) is ""."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ProvisioningError(400, "manager: an object with a user id as value", "invalidValue")
    return value


def _take_manager(body: dict) -> tuple[dict, str | None]:
    """The body without the manager, which scim2-models would refuse without a
    `$ref` (IdPs send none), and the manager it names (None: not named)."""
    extension = body.get(ENTERPRISE)
    if not isinstance(extension, dict) or "manager" not in extension:
        return body, None
    rest = {key: value for key, value in extension.items() if key != "manager"}
    return {**body, ENTERPRISE: rest}, _manager_value(extension["manager"])


def _patched_manager(body: dict) -> str | None:
    """The manager a PATCH sets ("" when it removes it; None: it does not touch it):
    with the attribute's path, or inside a value without a path (Okta)."""
    manager = None
    for operation in body.get("Operations") or []:
        if not isinstance(operation, dict):
            continue
        path, value = str(operation.get("path") or "").lower(), operation.get("value")
        if path in MANAGER_PATHS:
            removed = str(operation.get("op", "")).lower() == "remove"
            manager = "" if removed else _manager_value(value)
        elif not path and isinstance(value, dict):
            extension = value.get(ENTERPRISE)
            if f"{ENTERPRISE}:manager" in value:
                manager = _manager_value(value[f"{ENTERPRISE}:manager"])
            elif isinstance(extension, dict) and "manager" in extension:
                manager = _manager_value(extension["manager"])
    return manager


def _shown(request: HttpRequest, resource, status: int = 200) -> HttpResponse:
    return _response(resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), status)


@scim_view
def users(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        attributes = {"username": "username", "externalid": "scim__external_id"}
        found = _filtered(request, _managed_users().select_related("scim"), attributes)
        return _listed(request, found, lambda user: user_resource(request, user), ScimUser)
    if request.method == "POST":
        body, manager_id = _take_manager(_body(request))
        resource = _parse(ScimUser, body, Context.RESOURCE_CREATION_REQUEST)
        user = provisioning.scim_user_create(_user_fields(resource, manager_id=manager_id))
        return _shown(request, user_resource(request, user), 201)
    return _error(405, "GET or POST")


@scim_view
def user_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    user = _user(user_id)
    if request.method == "GET":
        return _shown(request, user_resource(request, user))
    if request.method == "PUT":
        body, manager_id = _take_manager(_body(request))
        resource = _parse(ScimUser, body, Context.RESOURCE_REPLACEMENT_REQUEST)
        user = provisioning.scim_user_update(user, _user_fields(resource, user, manager_id))
        return _shown(request, user_resource(request, user))
    if request.method == "PATCH":
        body = _body(request)
        patch = _parse(PatchOp[ScimUser], body, Context.RESOURCE_PATCH_REQUEST)
        resource = user_resource(request, user)
        _apply(patch, resource)
        fields = _user_fields(resource, user, _patched_manager(body))
        user = provisioning.scim_user_update(user, fields)
        return _shown(request, user_resource(request, user))
    if request.method == "DELETE":
        provisioning.scim_user_delete(user)
        return HttpResponse(status=204)
    return _error(405, "GET, PUT, PATCH or DELETE")


# What Airlock keeps of a resource; an IdP's operation on anything else (addresses,
# phoneNumbers, an extension's department) changes nothing here and is no error:
# Entra ID sends them in the same PATCH as `active`, which must not fail with them.
KEPT = {"active", "username", "name", "emails", "externalid", "displayname", "members"}


def _apply(patch: PatchOp, resource) -> None:
    for operation in patch.operations or []:
        single = type(patch)(operations=[operation])
        try:
            single.patch(resource)
        except (SCIMException, ValidationError, ValueError, TypeError) as exc:
            if _root(operation.path) not in KEPT:
                continue
            detail = getattr(exc, "detail", None) or str(exc).splitlines()[0]
            scim_type = getattr(exc, "scim_type", "") or "invalidValue"
            raise ProvisioningError(400, str(detail)[:500], scim_type) from None


def _root(path) -> str:
    """The attribute a PATCH path starts at: emails[type eq "work"].value -> emails;
    an extension's URN-prefixed path -> the extension (kept: none)."""
    text = str(path or "")
    if text.lower().startswith("urn:"):
        return "urn"
    return re.split(r"[\[.]", text, maxsplit=1)[0].lower() if text else ""


# --- groups -----------------------------------------------------------------


def _group(pk: str) -> Group:
    group = Group.objects.filter(pk=pk).first() if provisioning.is_id(pk) else None
    if group is None:
        raise ProvisioningError(404, f"no group {pk}")
    return group


def group_resource(request: HttpRequest, group: Group) -> ScimGroup:
    members = group.user_set.filter(pk__in=_managed_users()).order_by("pk")
    return ScimGroup(
        id=str(group.pk),
        display_name=group.name,
        members=[GroupMember(value=str(u.pk), display=u.get_username()) for u in members] or None,
        meta=Meta(resource_type="Group", location=_location(request, "Groups", group.pk)),
    )


def _member_ids(resource: ScimGroup) -> list[str]:
    return [str(member.value) for member in resource.members or [] if member.value]


@scim_view
def groups(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        found = _filtered(request, Group.objects.all(), {"displayname": "name"})
        return _listed(request, found, lambda group: group_resource(request, group), ScimGroup)
    if request.method == "POST":
        resource = _parse(ScimGroup, _body(request), Context.RESOURCE_CREATION_REQUEST)
        group = provisioning.scim_group_create(resource.display_name or "", _member_ids(resource))
        return _shown(request, group_resource(request, group), 201)
    return _error(405, "GET or POST")


@scim_view
def group_detail(request: HttpRequest, group_id: str) -> HttpResponse:
    group = _group(group_id)
    if request.method == "GET":
        return _shown(request, group_resource(request, group))
    if request.method in ("PUT", "PATCH"):
        if request.method == "PUT":
            resource = _parse(ScimGroup, _body(request), Context.RESOURCE_REPLACEMENT_REQUEST)
        else:
            patch = _parse(PatchOp[ScimGroup], _body(request), Context.RESOURCE_PATCH_REQUEST)
            resource = group_resource(request, group)
            _apply(patch, resource)
        group = provisioning.scim_group_update(
            group, resource.display_name or group.name, _member_ids(resource)
        )
        return _shown(request, group_resource(request, group))
    if request.method == "DELETE":
        provisioning.scim_group_delete(group)
        return HttpResponse(status=204)
    return _error(405, "GET, PUT, PATCH or DELETE")


# --- lists and filters ------------------------------------------------------


def _filtered(request: HttpRequest, queryset, attributes: dict[str, str]):
    text = request.GET.get("filter")
    if text is None:
        return queryset
    match = EQUALS.match(text)
    if match is None or match.group(1).lower() not in attributes:
        known = ", ".join(sorted(attributes))
        supported = f'filters supported: ATTRIBUTE eq "VALUE", on {known}'
        raise ProvisioningError(400, supported, "invalidFilter")
    try:
        value = json.loads(f'"{match.group(2)}"')
        value.encode()  # a lone surrogate cannot be stored nor compared
    except (ValueError, UnicodeEncodeError):
        raise ProvisioningError(
            400, "the filter's value is not a valid string", "invalidFilter"
        ) from None
    if has_control_characters(value):
        raise ProvisioningError(400, "the filter's value holds control characters", "invalidFilter")
    return queryset.filter(**{attributes[match.group(1).lower()]: value})


def _whole(request: HttpRequest, name: str, default: int, smallest: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        raise ProvisioningError(400, f"{name} must be a whole number", "invalidValue") from None
    return min(max(value, smallest), 2**31 - 1)


def _listed(request: HttpRequest, queryset, resource_of, model) -> HttpResponse:
    start = _whole(request, "startIndex", 1, 1)
    count = min(_whole(request, "count", MAX_PAGE, 0), MAX_PAGE)
    ordered = queryset.order_by("pk")
    page = list(ordered[start - 1 : start - 1 + count])
    listing = ListResponse[model](
        total_results=ordered.count(),
        start_index=start,
        items_per_page=len(page),
        resources=[resource_of(item) for item in page] or None,
    )
    return _response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


@scim_view
def not_found(request: HttpRequest) -> HttpResponse:
    return _error(404, "no such SCIM endpoint")


# --- discovery --------------------------------------------------------------


@scim_view
def service_provider_config(request: HttpRequest) -> HttpResponse:
    config = ServiceProviderConfig.model_validate(
        {
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_PAGE},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "AIRLOCK_SCIM_TOKEN",
                }
            ],
        }
    )
    return _response(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


@scim_view
def resource_types(request: HttpRequest) -> HttpResponse:
    types = [ResourceType.from_resource(model) for model in (ScimUser, ScimGroup)]
    listing = ListResponse[ResourceType](
        total_results=len(types), start_index=1, items_per_page=len(types), resources=types
    )
    return _response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


@scim_view
def schemas(request: HttpRequest) -> HttpResponse:
    found = [model.to_schema() for model in (CoreUser, EnterpriseUser, ScimGroup)]
    listing = ListResponse[Schema](
        total_results=len(found), start_index=1, items_per_page=len(found), resources=found
    )
    return _response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))
