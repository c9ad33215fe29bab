"""The REST API: one APIView per operation, each a thin caller of the lifecycle.

Approve, deny and reveal take the caller's MFA code in the body (`otp`) and
verify it exactly like the web's step-up before the lifecycle acts.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.services import has_mfa, mfa_step_up
from audit import signing
from audit.actions import Action
from audit.export import FORMATS
from audit.manifest import ExportRange, SealedExport, chain_head_seq
from audit.models import Source
from audit.responses import export_response
from audit.trail import request_info
from broker import lifecycle
from broker.api import serializers as s
from broker.catalog.load import CatalogError, load_catalog
from broker.models import AccessProfile, AccessRequest, CatalogState, Grant, Lock
from broker.policy.locks import holding_locks, is_security, known_targets
from broker.policy.requesters import requestable_profiles
from broker.selectors.audit_log import filtered_events, moments
from broker.selectors.queue import approval_queue
from broker.selectors.requests import is_auditor, visible_grant, visible_request


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField())


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def errors(*codes: int) -> dict:
    """Every operation may answer 401 and 429 too."""
    return {code: ErrorSerializer for code in sorted({*codes, 401, 429})}


def paginated(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page of `item`s, as `Pagination` returns it."""
    return type(
        f"Paginated{item.__name__.removesuffix('Serializer')}List",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ApiView(APIView):
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Answers name people and grants, and one carries a credential: never cache.
        response["Cache-Control"] = "no-store"
        return response

    def info(self):
        return request_info(self.request, source=Source.API)

    def page(self, queryset, serializer_class) -> Response:
        paginator = Pagination()
        rows = paginator.paginate_queryset(queryset, self.request, view=self)
        context = {"request": self.request}
        return paginator.get_paginated_response(
            serializer_class(rows, many=True, context=context).data
        )

    def verify_otp(self, code: str) -> None:
        """The web step-up, with the code from the body; MfaError becomes a 403."""
        mfa_step_up(user=self.request.user, code=code, info=self.info())


class IsAuditor(permissions.BasePermission):
    message = "auditors only"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_auditor(request.user))


class IsSecurity(permissions.BasePermission):
    message = "the security role only"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_security(request.user))


class IsSecurityOrAuditor(permissions.BasePermission):
    message = "the security role and auditors only"

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (is_security(user) or is_auditor(user)))


# A requester's external access is read with them: the serializers name a third
# party's company.
GRANTS = Grant.objects.select_related("request__profile", "request__requester__external_access")


def choice_param(request, name: str, choices: list[str], default: str = "") -> str:
    """A query parameter that must be one of `choices` when given (even empty)."""
    if name not in request.query_params:
        return default
    value = request.query_params[name]
    if value not in choices:
        raise serializers.ValidationError({name: f"one of {', '.join(choices)}"})
    return value


REQUEST_EXAMPLE = OpenApiExample(
    "A pending request",
    response_only=True,
    value={
        "id": "6f1c2b1e-8a4d-4d47-9a52-0d8e1c3f2a10",
        "profile": "prod-db-readonly",
        "requester": "alice",
        "status": "pending",
        "duration": "1h",
        "reason": "INC-123: checking the failed payouts",
        "ticket": "INC-123",
        "source": "api",
        "created_at": "2026-11-29T09:00:00Z",
        "pending_until": "2026-11-29T10:00:00Z",
        "decided_at": None,
        "decision_reason": "",
        "approvals_required": 1,
        "risk_score": 35,
        "risk_factors": [
            {"name": "sensitivity", "points": 15, "why": "prod-db-readonly is sensitive (15/50)"},
            {"name": "first_time", "points": 20, "why": "first time for prod-db-readonly"},
        ],
        "policy_trace": [
            {"rule": "risk", "applies": True, "why": "score 35: ..."},
            {"rule": "auto_approve", "applies": False, "why": "risk 35 > 20"},
        ],
        "start_at": None,
        "break_glass": False,
        "decisions": [],
        "grant": None,
        "extends": None,
    },
)
GRANT_EXAMPLE = OpenApiExample(
    "An active grant",
    response_only=True,
    value={
        "id": "0b7e4c55-3f1e-4a8b-bb0e-5a1d2c3e4f50",
        "request": "6f1c2b1e-8a4d-4d47-9a52-0d8e1c3f2a10",
        "profile": "prod-db-readonly",
        "provider": "postgres.role",
        "requester": "alice",
        "status": "active",
        "duration": "1h",
        "created_at": "2026-11-29T09:05:00Z",
        "activated_at": "2026-11-29T09:05:01Z",
        "expires_at": "2026-11-29T10:05:01Z",
        "seconds_left": 3540,
        "ended_at": None,
        "end_reason": "",
        "credential_available": True,
        "revealed_at": None,
        "extensions": 0,
    },
)


# --- who am I, what may I request -------------------------------------------


class MeView(ApiView):
    @extend_schema(
        operation_id="me",
        summary="Who the token belongs to",
        responses={200: s.MeSerializer, **errors()},
        examples=[
            OpenApiExample(
                "alice",
                response_only=True,
                value={
                    "username": "alice",
                    "is_auditor": False,
                    "mfa_enrolled": True,
                    "token_name": "laptop",  # nosec B105  # a documentation example
                    "token_expires_at": "2027-01-28T09:00:00Z",  # nosec B105  # idem
                },
            )
        ],
    )
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {
            "username": request.user.get_username(),
            "is_auditor": is_auditor(request.user),
            "mfa_enrolled": has_mfa(request.user),
            "token_name": token.name if token else None,
            "token_expires_at": token.expires_at if token else None,
        }
        return Response(s.MeSerializer(data).data)


class ProfileListView(ApiView):
    @extend_schema(
        operation_id="profiles_list",
        summary="The profiles I may request",
        responses={200: s.ProfileSerializer(many=True), **errors()},
        examples=[
            OpenApiExample(
                "One profile",
                response_only=True,
                value=[
                    {
                        "id": "prod-db-readonly",
                        "title": "Production database, read-only",
                        "description": "",
                        "provider": "postgres.role",
                        "max_duration": "4h",
                        "default_duration": "1h",
                        "min_duration": "1m",
                        "approvals_required": 1,
                        "reason_required": True,
                        "ticket_required": True,
                        "ticket_pattern": "INC-[0-9]+",
                        "needs_ssh_public_key": False,
                    }
                ],
            )
        ],
    )
    def get(self, request):
        return Response(s.ProfileSerializer(requestable_profiles(request.user), many=True).data)


class CatalogStatusView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAuditor]

    @extend_schema(
        operation_id="catalog_status",
        summary="Whether the catalog file on disk is the one applied (auditors)",
        responses={200: s.CatalogStatusSerializer, **errors(403)},
        examples=[
            OpenApiExample(
                "In sync",
                response_only=True,
                value={
                    "sha256": "9f2c…",
                    "synced_at": "2026-11-29T08:00:00Z",
                    "profiles": 6,
                    "enabled_profiles": 6,
                    "file_sha256": "9f2c…",
                    "in_sync": True,
                    "file_errors": [],
                },
            )
        ],
    )
    def get(self, request):
        profiles = AccessProfile.objects.all()
        state = CatalogState.objects.first()  # what the last sync_catalog applied
        file_sha256, file_errors = None, []
        try:
            file_sha256 = load_catalog(settings.AIRLOCK_CATALOG).sha256
        except CatalogError as exc:
            file_errors = exc.errors
        applied = state.sha256 if state else None
        data = {
            "sha256": applied,
            "synced_at": state.synced_at if state else None,
            "profiles": profiles.count(),
            "enabled_profiles": profiles.filter(enabled=True).count(),
            "file_sha256": file_sha256,
            "in_sync": applied is not None and applied == file_sha256,
            "file_errors": file_errors,
        }
        return Response(s.CatalogStatusSerializer(data).data)


# --- requests ---------------------------------------------------------------

REQUESTS = AccessRequest.objects.select_related(
    "profile", "requester__external_access", "grant"
).prefetch_related("decisions__approver")


class RequestListView(ApiView):
    @extend_schema(
        operation_id="requests_list",
        summary="My requests, or the ones awaiting my decision",
        parameters=[
            OpenApiParameter("scope", str, enum=["mine", "awaiting"], description="Default: mine."),
            OpenApiParameter("status", str, enum=AccessRequest.Status.values),
        ],
        responses={200: paginated(s.RequestSerializer), **errors(400)},
        examples=[REQUEST_EXAMPLE],
    )
    def get(self, request):
        scope = choice_param(request, "scope", ["mine", "awaiting"], default="mine")
        status = choice_param(request, "status", AccessRequest.Status.values)
        if scope == "awaiting":
            queryset = approval_queue(request.user).prefetch_related("decisions__approver")
            queryset = queryset.select_related("grant")
        else:
            queryset = REQUESTS.filter(requester=request.user).order_by("-created_at")
            if status:
                queryset = queryset.filter(status=status)
        return self.page(queryset, s.RequestSerializer)


class RequestCreateView(ApiView):
    @extend_schema(
        operation_id="requests_create",
        summary="Ask for access",
        request=s.RequestCreateSerializer,
        responses={201: s.RequestSerializer, **errors(400, 403, 409)},
        examples=[
            OpenApiExample(
                "One hour on the production database",
                request_only=True,
                value={
                    "profile": "prod-db-readonly",
                    "duration": "1h",
                    "reason": "INC-123: checking the failed payouts",
                    "ticket": "INC-123",
                },
            ),
            REQUEST_EXAMPLE,
        ],
    )
    def post(self, request):
        body = s.RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        profile = AccessProfile.objects.filter(slug=data["profile"], enabled=True).first()
        if profile is None:
            raise serializers.ValidationError({"profile": f"no profile {data['profile']!r}"})
        access_request = lifecycle.access_request_submit(
            requester=request.user,
            profile=profile,
            duration=data.get("duration"),
            reason=data.get("reason", ""),
            ticket=data.get("ticket", ""),
            ssh_public_key=data.get("ssh_public_key", ""),
            start_at=data.get("start_at"),
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(
                REQUESTS.get(pk=access_request.pk), context={"request": request}
            ).data,
            status=201,
        )


class BreakGlassView(ApiView):
    @extend_schema(
        operation_id="requests_break_glass",
        summary="Emergency access without approval (profiles that allow it)",
        description=(
            "After verifying `otp`: access at once, capped at the profile's break-glass "
            "duration, announced to security and every approver, with a review an approver "
            "must close afterwards."
        ),
        request=s.BreakGlassSerializer,
        responses={201: s.RequestSerializer, **errors(400, 403, 409)},
        examples=[
            OpenApiExample(
                "Production is down",
                request_only=True,
                value={
                    "profile": "prod-db-readonly",
                    "duration": "30m",
                    "reason": "INC-500: payments down",
                    "otp": "123456",
                },
            )
        ],
    )
    def post(self, request):
        body = s.BreakGlassSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        profile = AccessProfile.objects.filter(slug=data["profile"], enabled=True).first()
        if profile is None:
            raise serializers.ValidationError({"profile": f"no profile {data['profile']!r}"})
        self.verify_otp(data["otp"])
        access_request = lifecycle.access_request_submit(
            requester=request.user,
            profile=profile,
            duration=data.get("duration"),
            reason=data["reason"],
            ticket=data.get("ticket", ""),
            break_glass=True,
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(
                REQUESTS.get(pk=access_request.pk), context={"request": request}
            ).data,
            status=201,
        )


class RequestDetailView(ApiView):
    @extend_schema(
        operation_id="requests_retrieve",
        summary="One request, with its decisions and grant",
        responses={200: s.RequestSerializer, **errors(404)},
        examples=[REQUEST_EXAMPLE],
    )
    def get(self, request, request_id):
        access_request = visible_request(request.user, request_id)
        return Response(
            s.RequestSerializer(
                REQUESTS.get(pk=access_request.pk), context={"request": request}
            ).data
        )


class RequestCancelView(ApiView):
    @extend_schema(
        operation_id="requests_cancel",
        summary="Withdraw my pending request",
        request=s.ReasonSerializer,
        responses={200: s.RequestSerializer, **errors(400, 403, 404, 409)},
        examples=[OpenApiExample("No longer needed", request_only=True, value={"reason": "fixed"})],
    )
    def post(self, request, request_id):
        visible_request(request.user, request_id)
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lifecycle.access_request_cancel(
            request_id=request_id,
            actor=request.user,
            reason=body.validated_data.get("reason", ""),
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(REQUESTS.get(pk=request_id), context={"request": request}).data
        )


class RequestApproveView(ApiView):
    @extend_schema(
        operation_id="requests_approve",
        summary="Approve, after verifying my MFA code",
        request=s.ApproveSerializer,
        responses={200: s.RequestSerializer, **errors(400, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "With a TOTP code", request_only=True, value={"otp": "123456", "comment": "ok"}
            )
        ],
    )
    def post(self, request, request_id):
        visible_request(request.user, request_id)
        body = s.ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.verify_otp(body.validated_data["otp"])
        lifecycle.access_request_approve(
            request_id=request_id,
            approver=request.user,
            comment=body.validated_data.get("comment", ""),
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(REQUESTS.get(pk=request_id), context={"request": request}).data
        )


class RequestDenyView(ApiView):
    @extend_schema(
        operation_id="requests_deny",
        summary="Deny with a reason, after verifying my MFA code",
        request=s.DenySerializer,
        responses={200: s.RequestSerializer, **errors(400, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "Denied",
                request_only=True,
                value={"otp": "123456", "reason": "use the read replica"},
            )
        ],
    )
    def post(self, request, request_id):
        visible_request(request.user, request_id)
        body = s.DenySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.verify_otp(body.validated_data["otp"])
        lifecycle.access_request_deny(
            request_id=request_id,
            approver=request.user,
            reason=body.validated_data["reason"],
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(REQUESTS.get(pk=request_id), context={"request": request}).data
        )


# --- grants -----------------------------------------------------------------


class GrantListView(ApiView):
    @extend_schema(
        operation_id="grants_list",
        summary="My grants, newest first",
        parameters=[OpenApiParameter("status", str, enum=Grant.Status.values)],
        responses={200: paginated(s.GrantSerializer), **errors(400)},
        examples=[GRANT_EXAMPLE],
    )
    def get(self, request):
        status = choice_param(request, "status", Grant.Status.values)
        queryset = GRANTS.filter(request__requester=request.user).order_by("-created_at")
        if status:
            queryset = queryset.filter(status=status)
        return self.page(queryset, s.GrantSerializer)


class GrantDetailView(ApiView):
    @extend_schema(
        operation_id="grants_retrieve",
        summary="One grant",
        responses={200: s.GrantSerializer, **errors(404)},
        examples=[GRANT_EXAMPLE],
    )
    def get(self, request, grant_id):
        return Response(s.GrantSerializer(visible_grant(request.user, grant_id)).data)


class GrantRevokeView(ApiView):
    @extend_schema(
        operation_id="grants_revoke",
        summary="End a grant early (its owner, an approver of the profile, or an admin)",
        request=s.ReasonSerializer,
        responses={200: s.GrantSerializer, **errors(400, 403, 404, 409)},
        examples=[OpenApiExample("Done", request_only=True, value={"reason": "done"})],
    )
    def post(self, request, grant_id):
        visible_grant(request.user, grant_id)
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        lifecycle.grant_revoke(
            grant_id=grant_id,
            actor=request.user,
            reason=body.validated_data.get("reason", ""),
            info=self.info(),
        )
        return Response(s.GrantSerializer(GRANTS.get(pk=grant_id)).data)


class GrantExtendView(ApiView):
    @extend_schema(
        operation_id="grants_extend",
        summary="Ask for more time on my grant, when its profile allows",
        description=(
            "Creates an extension request (`extends` names the grant), decided like any "
            "request unless the profile approves extensions by policy. Once approved, the "
            "credential is re-issued with the later expiry and the old one revoked; reveal "
            "the new one."
        ),
        request=s.ExtendSerializer,
        responses={201: s.RequestSerializer, **errors(400, 403, 404, 409)},
        examples=[
            OpenApiExample(
                "Thirty minutes more",
                request_only=True,
                value={"duration": "30m", "reason": "the migration is still running"},
            )
        ],
    )
    def post(self, request, grant_id):
        visible_grant(request.user, grant_id)
        body = s.ExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        extension = lifecycle.grant_extend_request(
            grant_id=grant_id,
            actor=request.user,
            duration=body.validated_data["duration"],
            reason=body.validated_data.get("reason", ""),
            info=self.info(),
        )
        return Response(
            s.RequestSerializer(REQUESTS.get(pk=extension.pk), context={"request": request}).data,
            status=201,
        )


class GrantRevealView(ApiView):
    @extend_schema(
        operation_id="grants_reveal",
        summary="Show my credential, once, after verifying my MFA code",
        request=s.OtpSerializer,
        responses={200: s.CredentialSerializer, **errors(400, 403, 404, 409)},
        examples=[
            OpenApiExample("With a TOTP code", request_only=True, value={"otp": "123456"}),
            OpenApiExample(
                "A PostgreSQL role",
                response_only=True,
                value={
                    "kind": "postgres",
                    "credential": {
                        "host": "db.internal",
                        "port": 5432,
                        "dbname": "payments",
                        "user": "airlock_alice_1a2b3c",
                        "password": "…",  # nosec B105  # a documentation example
                    },
                },
            ),
        ],
    )
    def post(self, request, grant_id):
        grant = visible_grant(request.user, grant_id)
        if grant.request.requester_id != request.user.pk:
            raise Http404("no such grant")  # approvers see grants, never their credentials
        body = s.OtpSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.verify_otp(body.validated_data["otp"])
        try:
            credential = lifecycle.grant_reveal(
                grant_id=grant_id, user=request.user, info=self.info()
            )
        except lifecycle.AlreadyShown as exc:
            again = f"{reverse('request-new')}?{urlencode({'profile': exc.profile_slug})}"
            raise lifecycle.AlreadyShown(
                f"{exc.message} ({request.build_absolute_uri(again)})",
                profile_slug=exc.profile_slug,
            ) from None
        kind = credential.pop("kind", "")
        return Response({"kind": kind, "credential": credential})


# --- audit ------------------------------------------------------------------

AUDIT_FILTERS = [
    OpenApiParameter("since", str, description="ISO date or date-time (UTC if naive)"),
    OpenApiParameter("until", str, description="ISO date (the whole day) or date-time"),
    OpenApiParameter("actor", str),
    OpenApiParameter("action", str, description="A prefix, e.g. grant."),
    OpenApiParameter("source", str, enum=Source.values),
    OpenApiParameter("profile", str),
]


class AuditEventListView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAuditor]

    @extend_schema(
        operation_id="audit_events_list",
        summary="Audit events, newest first (auditors)",
        parameters=AUDIT_FILTERS,
        responses={200: paginated(s.AuditEventSerializer), **errors(400, 403)},
        examples=[
            OpenApiExample(
                "One event",
                response_only=True,
                value={
                    "count": 1,
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "seq": 42,
                            "created_at": "2026-11-29T09:05:01Z",
                            "actor": "bob",
                            "actor_id": 2,
                            "action": Action.REQUEST_APPROVED,
                            "target_type": "accessrequest",
                            "target_id": "6f1c2b1e-8a4d-4d47-9a52-0d8e1c3f2a10",
                            "from_status": "pending",
                            "to_status": "approved",
                            "reason": "",
                            "source": "slack",
                            "ip": None,
                            "user_agent": "slack:T1/U123",
                            "data": {"approvers": ["bob"], "approvals_required": 1},
                            "prev_hash": "3b1f…",
                            "hash": "9e0c…",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request):
        choice_param(request, "source", Source.values)
        events, _ = filtered_events(request.query_params)
        return self.page(events.order_by("-seq"), s.AuditEventSerializer)


class IgnoreAcceptHeader(BaseContentNegotiation):
    """The export's type is chosen by `format`, not by the Accept header."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0]


RANGE_ONLY = {"format", "since", "until", "through_seq"}
THROUGH_SEQ = OpenApiParameter(
    "through_seq", int, description="Only events up to this sequence number (see the header)."
)


def _through_seq(request) -> int:
    """Pin the export to the chain as it is now, or as an earlier answer said (never
    beyond the head: a manifest would claim events that did not exist yet)."""
    head = chain_head_seq()
    text = request.query_params.get("through_seq")
    if text is None:
        return head
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # int() refuses "²"
        raise serializers.ValidationError({"through_seq": "a sequence number"})
    if int(text) > head:
        raise serializers.ValidationError(
            {"through_seq": f"beyond the chain's head, event #{head}"}
        )
    return int(text)


def _sealed_range(request) -> tuple[ExportRange, dict[str, str]]:
    """The range of a sealable export; the export and its manifest both select their
    events from it, so the manifest states exactly what the file holds."""
    _, filters = filtered_events(request.query_params)  # a bad filter is a 400 here
    since, until = moments(filters)
    export_range = ExportRange(since=since, until=until, through_seq=_through_seq(request))
    if problem := export_range.archived_problem():
        raise serializers.ValidationError({"since": problem})
    return export_range, filters


class AuditExportView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAuditor]
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        operation_id="audit_export",
        summary="Export audit events, streamed (auditors)",
        description=(
            "CSV, JSON Lines or OCSF (JSON Lines). With only `since`/`until`, the export "
            "covers the whole range up to `X-Airlock-Through-Seq` (a header: the chain's "
            "head, or `through_seq` when given, which may not lie beyond the head), and "
            "`/api/v1/audit/manifest/` with the same parameters and that `through_seq` "
            "gives its sealed manifest for `manage.py verify_audit --export FILE`."
        ),
        parameters=[
            OpenApiParameter("format", str, enum=sorted(FORMATS), description="Default: csv."),
            *AUDIT_FILTERS,
            THROUGH_SEQ,
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **errors(400, 403),
        },
        examples=[
            OpenApiExample(
                "CSV",
                response_only=True,
                media_type="text/csv",
                value="seq,created_at,actor,actor_id,action,...\n42,2026-11-29T09:05:01Z,bob,...",
            )
        ],
    )
    def get(self, request):
        export_format = choice_param(request, "format", sorted(FORMATS), default="csv")
        choice_param(request, "source", Source.values)
        if not set(request.query_params) <= RANGE_ONLY:
            events, filters = filtered_events(request.query_params)
            return export_response(request, events, filters, export_format, source=Source.API)
        export_range, filters = _sealed_range(request)
        response = export_response(
            request, export_range.events(), filters, export_format, source=Source.API
        )
        response["X-Airlock-Through-Seq"] = str(export_range.through_seq)
        return response


class AuditManifestView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAuditor]

    @extend_schema(
        operation_id="audit_manifest",
        summary="The sealed manifest of a range export (auditors)",
        description=(
            "The manifest `export_audit` writes beside a file, for the export with the "
            "same `format`, `since`, `until` and `through_seq`: the range it holds "
            "(every event created from `since` to `until` up to event `through_seq`), "
            "the count, the first and last sequence numbers and hashes, the file's "
            "sha256, signed with Ed25519 (check it with the key from "
            "`/api/v1/audit/keys/`) and, where configured, an HMAC-SHA256 over all of these."
        ),
        parameters=[
            OpenApiParameter("format", str, enum=sorted(FORMATS), description="Default: csv."),
            *AUDIT_FILTERS[:2],
            OpenApiParameter(
                "through_seq", int, required=True, description="At most the chain's head."
            ),
        ],
        responses={200: s.ManifestSerializer, **errors(400, 403, 503)},
    )
    def get(self, request):
        extra = sorted(set(request.query_params) - RANGE_ONLY)
        if extra:
            raise serializers.ValidationError(
                {name: "a sealed export covers a whole time range: no other filters"
                 for name in extra}
            )  # fmt: skip
        if "through_seq" not in request.query_params:
            raise serializers.ValidationError({"through_seq": "required"})
        export_format = choice_param(request, "format", sorted(FORMATS), default="csv")
        export_range, _ = _sealed_range(request)
        export = SealedExport(export_range, export_format)
        for _ in export.chunks():
            pass  # only the digests are wanted
        return Response(export.manifest().as_dict())


class AuditKeysView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAuditor]

    @extend_schema(
        operation_id="audit_keys",
        summary="The public keys that sign exports, anchors and archives (auditors)",
        description=(
            "Every Ed25519 key that has signed, with its fingerprint and when it was in "
            "use: save the answer as a file for `verify_audit --public-key FILE`. Compare "
            "the fingerprints with the ones you recorded when each key was introduced: "
            "this list alone is Airlock's word."
        ),
        responses={200: s.KeyringSerializer, **errors(403, 503)},
    )
    def get(self, request):
        return Response(signing.keyring())


# --- locks ------------------------------------------------------------------

LOCKS = Lock.objects.select_related(
    "user", "profile", "placed_by", "lift_proposed_by", "ended_by"
).order_by("-placed_at")


class LockListView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsSecurityOrAuditor]

    @extend_schema(
        operation_id="locks_list",
        summary="Locks, newest first: those in force, or all (security role, auditors)",
        parameters=[OpenApiParameter("all", bool, description="Ended locks too.")],
        responses={200: paginated(s.LockSerializer), **errors(400, 403)},
    )
    def get(self, request):
        show_all = choice_param(request, "all", ["true", "false"], default="false") == "true"
        queryset = LOCKS if show_all else LOCKS.filter(pk__in=holding_locks().values("pk"))
        return self.page(queryset, s.LockSerializer)


class LockTargetsView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsSecurityOrAuditor]

    @extend_schema(
        operation_id="locks_targets",
        summary="The provider targets a lock may name, with their profiles",
        responses={200: s.LockTargetSerializer(many=True), **errors(403)},
    )
    def get(self, request):
        targets = sorted(known_targets().items())
        return Response([{"target": target, "profiles": slugs} for target, slugs in targets])


class LockCreateView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsSecurity]

    @extend_schema(
        operation_id="locks_create",
        summary="Lock a user, a profile or a provider target, after verifying my MFA code",
        description=(
            "Revokes every live grant in the lock's scope at the source and withdraws "
            "pending requests there; until the lock ends, requests, approvals, "
            "activations, extensions and reveals in its scope are refused."
        ),
        request=s.LockCreateSerializer,
        responses={201: s.LockSerializer, **errors(400, 403)},
        examples=[
            OpenApiExample(
                "Lock a user for a day",
                request_only=True,
                value={
                    "scope": "user",
                    "subject": "alice",
                    "reason": "laptop stolen",
                    "duration": "1d",
                    "otp": "123456",
                },
            )
        ],
    )
    def post(self, request):
        body = s.LockCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        self.verify_otp(data["otp"])
        lock, _ = lifecycle.lock_place(
            actor=request.user,
            scope=data["scope"],
            subject=data["subject"],
            reason=data["reason"],
            duration=data.get("duration"),
            info=self.info(),
        )
        return Response(s.LockSerializer(LOCKS.get(pk=lock.pk)).data, status=201)


class LockDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsSecurityOrAuditor]

    @extend_schema(
        operation_id="locks_retrieve",
        summary="One lock",
        responses={200: s.LockSerializer, **errors(403, 404)},
    )
    def get(self, request, lock_id):
        lock = LOCKS.filter(pk=lock_id).first()
        if lock is None:
            raise Http404("no such lock")
        return Response(s.LockSerializer(lock).data)


class LockLiftView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsSecurity]

    @extend_schema(
        operation_id="locks_lift",
        summary="Propose lifting a lock, or confirm another's proposal (security role)",
        description=(
            "The first call proposes (with a reason); a second person of the security "
            "role confirms with the same call, and the lock ends. `ended_at` says which."
        ),
        request=s.LockLiftSerializer,
        responses={200: s.LockSerializer, **errors(400, 403, 404, 409)},
    )
    def post(self, request, lock_id):
        body = s.LockLiftSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        self.verify_otp(body.validated_data["otp"])
        lifecycle.lock_lift(
            lock_id=lock_id,
            actor=request.user,
            reason=body.validated_data.get("reason", ""),
            info=self.info(),
        )
        return Response(s.LockSerializer(LOCKS.get(pk=lock_id)).data)
