"""What the API reads and writes. Input serializers only parse; the lifecycle decides."""

from django.core.validators import validate_slug
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent, Source
from broker.models import AccessProfile, AccessRequest, Grant, Lock
from broker.policy.externals import external_of
from broker.policy.requesters import unavailable_because
from broker.selectors.requests import risk_factors_seen_by
from lib.durations import format_duration, parse_duration
from lib.providers import get_provider

OTP_HELP = "Your current TOTP code (or an unused backup code)."


JSON_KINDS = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "a list",
    dict: "an object",
}


class StrictCharField(serializers.CharField):
    """A string, and only a string. DRF's CharField turns 0 and 12.5 into "0" and
    "12.5"; the schema says string, so a client sending a number has a bug worth
    hearing about (and a number is never what a person typed as a reason)."""

    default_error_messages = {"not_a_string": "Must be a string, not {kind}."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", kind=JSON_KINDS.get(type(data), "that"))
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"^([0-9]+[dhms])+$", "example": "1h30m"})
class DurationField(StrictCharField):
    """A human duration: "45m", "1h30m", "2d", or whole seconds as text."""

    default_error_messages = {"invalid": "{message}"}

    def to_internal_value(self, data):
        try:
            return parse_duration(super().to_internal_value(data))
        except ValueError as exc:
            self.fail("invalid", message=str(exc))

    def to_representation(self, value):
        return format_duration(value)


class ProfileSerializer(serializers.Serializer):
    id = serializers.CharField(source="slug")
    title = serializers.CharField()
    description = serializers.CharField(source="definition.description")
    provider = serializers.CharField(source="provider_kind")
    max_duration = DurationField(source="definition.max_duration")
    default_duration = DurationField(source="definition.duration_default")
    min_duration = serializers.SerializerMethodField()
    approvals_required = serializers.IntegerField(source="definition.approvals_required")
    reason_required = serializers.BooleanField(source="definition.reason_required")
    ticket_required = serializers.BooleanField(source="definition.ticket_required")
    ticket_pattern = serializers.CharField(source="definition.ticket_pattern", allow_null=True)
    needs_ssh_public_key = serializers.SerializerMethodField()
    unavailable_because = serializers.SerializerMethodField(
        help_text="why it cannot be granted here (its source is not configured); null when it can"
    )

    def get_unavailable_because(self, profile: AccessProfile) -> str | None:
        return unavailable_because(profile)

    def get_min_duration(self, profile: AccessProfile) -> str:
        return format_duration(get_provider(profile.provider_kind).min_duration)

    def get_needs_ssh_public_key(self, profile: AccessProfile) -> bool:
        return get_provider(profile.provider_kind).needs_public_key


class RequestCreateSerializer(serializers.Serializer):
    profile = StrictCharField(
        max_length=63, validators=[validate_slug], help_text="The profile's id."
    )
    duration = DurationField(required=False, help_text="Defaults to the profile's default.")
    reason = StrictCharField(
        required=False, allow_blank=True, max_length=2000, trim_whitespace=True
    )
    ticket = StrictCharField(required=False, allow_blank=True, max_length=100)
    ssh_public_key = StrictCharField(required=False, allow_blank=True, max_length=16000)
    start_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="A change window: minted at this time."
    )


class BreakGlassSerializer(serializers.Serializer):
    profile = StrictCharField(max_length=63, validators=[validate_slug])
    duration = DurationField(required=False, help_text="At most the break-glass cap.")
    reason = StrictCharField(max_length=2000, help_text="What the emergency is.")
    ticket = StrictCharField(required=False, allow_blank=True, max_length=100)
    otp = StrictCharField(max_length=32, help_text=OTP_HELP)


class DecisionSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    decision = serializers.CharField()
    comment = serializers.CharField()
    source = serializers.CharField()
    mfa_method = serializers.CharField()
    created_at = serializers.DateTimeField()


class RiskFactorSerializer(serializers.Serializer):
    name = serializers.CharField()
    points = serializers.IntegerField()
    why = serializers.CharField()


class PolicyStepSerializer(serializers.Serializer):
    rule = serializers.CharField()
    applies = serializers.BooleanField()
    why = serializers.CharField()


class GrantSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Grant.Status.choices)
    expires_at = serializers.DateTimeField(allow_null=True)


class RequestSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    profile = serializers.CharField(source="profile.slug")
    requester = serializers.CharField(source="requester.username")
    requester_external = serializers.SerializerMethodField(
        help_text="A third party's company (an external account under a sponsor); null for staff."
    )
    status = serializers.ChoiceField(choices=AccessRequest.Status.choices)
    duration = DurationField()
    reason = serializers.CharField()
    ticket = serializers.CharField()
    source = serializers.ChoiceField(choices=Source.choices)
    created_at = serializers.DateTimeField()
    pending_until = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField()
    approvals_required = serializers.IntegerField(
        help_text="The profile's approvals plus any the risk added."
    )
    risk_score = serializers.IntegerField()
    risk_factors = serializers.SerializerMethodField(
        help_text="Each factor's points and why; the learned model's reasons (factor "
        "`unusual`) are for approvers and the security team, not the requester."
    )
    unusual_score = serializers.IntegerField(
        allow_null=True,
        help_text="The learned model of usual access, 0-100 (its reasons are a risk "
        "factor named unusual); null when no model was trained yet.",
    )
    risk_model = serializers.IntegerField(
        source="risk_model_id", allow_null=True, help_text="The model version that scored it."
    )
    policy_trace = PolicyStepSerializer(many=True, help_text="Each rule weighed, and why.")
    start_at = serializers.DateTimeField(allow_null=True)
    break_glass = serializers.BooleanField()
    decisions = DecisionSerializer(many=True)
    grant = serializers.SerializerMethodField()
    extends = serializers.UUIDField(
        source="extends_id", allow_null=True, help_text="The grant this request would extend."
    )

    def get_requester_external(self, access_request: AccessRequest) -> str | None:
        access = external_of(access_request.requester)
        return access.company if access else None

    def get_risk_factors(self, access_request: AccessRequest) -> RiskFactorSerializer(many=True):
        request = self.context.get("request")
        viewer = request.user if request is not None else None
        return risk_factors_seen_by(viewer, access_request)

    def get_grant(self, access_request: AccessRequest) -> GrantSummarySerializer(allow_null=True):
        grant = getattr(access_request, "grant", None)
        return GrantSummarySerializer(grant).data if grant else None


class GrantSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    request = serializers.UUIDField(source="request.id")
    profile = serializers.CharField(source="request.profile.slug")
    provider = serializers.CharField(source="request.profile.provider_kind")
    requester = serializers.CharField(source="request.requester.username")
    requester_external = serializers.SerializerMethodField(
        help_text="A third party's company (an external account under a sponsor); null for staff."
    )
    status = serializers.ChoiceField(choices=Grant.Status.choices)
    duration = DurationField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    seconds_left = serializers.SerializerMethodField()
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()
    credential_available = serializers.SerializerMethodField(
        help_text="True while the credential can still be revealed (once)."
    )
    revealed_at = serializers.DateTimeField(allow_null=True)
    extensions = serializers.IntegerField(help_text="How many times it was extended.")

    def get_requester_external(self, grant: Grant) -> str | None:
        access = external_of(grant.request.requester)
        return access.company if access else None

    def get_seconds_left(self, grant: Grant) -> int:
        if grant.status != Grant.Status.ACTIVE or grant.expires_at is None:
            return 0
        return max(0, int((grant.expires_at - timezone.now()).total_seconds()))

    def get_credential_available(self, grant: Grant) -> bool:
        return grant.status == Grant.Status.ACTIVE and grant.secret is not None


class OtpSerializer(serializers.Serializer):
    otp = StrictCharField(max_length=32, help_text=OTP_HELP)


class ApproveSerializer(OtpSerializer):
    comment = StrictCharField(required=False, allow_blank=True, max_length=2000)


class DenySerializer(OtpSerializer):
    reason = StrictCharField(max_length=2000, help_text="Why: the requester sees it.")


class ExtendSerializer(serializers.Serializer):
    duration = DurationField(help_text="How much longer.")
    reason = StrictCharField(required=False, allow_blank=True, max_length=2000)


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=2000)


class LockCreateSerializer(OtpSerializer):
    scope = serializers.ChoiceField(choices=Lock.Scope.values)
    subject = StrictCharField(
        max_length=200,
        help_text="A username, a profile id, or a provider target (GET /api/v1/locks/targets/).",
    )
    reason = StrictCharField(max_length=2000)
    duration = DurationField(required=False, help_text="Empty: until lifted.")


class LockLiftSerializer(OtpSerializer):
    reason = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Needed to propose; the confirming person may leave it empty.",
    )


class LockSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    scope = serializers.CharField()
    subject = serializers.CharField()
    reason = serializers.CharField()
    placed_by = serializers.CharField(allow_null=True, help_text="null: automatic containment")
    placed_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    evidence = serializers.ListField(child=serializers.IntegerField(), help_text="audit seqs")
    lift_proposed_by = serializers.CharField(allow_null=True)
    lift_proposed_at = serializers.DateTimeField(allow_null=True)
    lift_reason = serializers.CharField()
    ended_at = serializers.DateTimeField(allow_null=True)
    ended_by = serializers.CharField(allow_null=True)
    holding = serializers.SerializerMethodField()

    def get_holding(self, lock: Lock) -> bool:
        return lock.ended_at is None and (lock.ends_at is None or lock.ends_at > timezone.now())


class LockTargetSerializer(serializers.Serializer):
    target = serializers.CharField()
    profiles = serializers.ListField(child=serializers.CharField())


class CredentialSerializer(serializers.Serializer):
    """The credential, shown once; its fields depend on `kind`."""

    kind = serializers.CharField()
    credential = serializers.DictField(help_text="The fields of this kind of credential.")


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "seq", "created_at", "actor", "actor_id", "action", "target_type", "target_id",
            "from_status", "to_status", "reason", "source", "ip", "user_agent", "data",
            "prev_hash", "hash",
        ]  # fmt: skip


class ManifestSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    format = serializers.CharField()
    since = serializers.CharField(help_text="ISO date-time (UTC); empty when open")
    until = serializers.CharField(help_text="ISO date-time (UTC); empty when open")
    through_seq = serializers.IntegerField(help_text="the chain's head the export is pinned to")
    count = serializers.IntegerField()
    first_seq = serializers.IntegerField(allow_null=True)
    last_seq = serializers.IntegerField(allow_null=True)
    first_prev_hash = serializers.CharField(allow_null=True)
    last_hash = serializers.CharField(allow_null=True)
    file_sha256 = serializers.CharField()
    key_id = serializers.CharField(help_text="the Ed25519 key that signed; empty when unsigned")
    signed_at = serializers.CharField()
    signature = serializers.CharField(help_text="Ed25519, base64, over every field but the seals")
    hmac_sha256 = serializers.CharField(help_text="empty when no HMAC key is configured")


class SigningKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    fingerprint = serializers.CharField(help_text="SHA256 of the raw key, base64, as ssh-keygen")
    public_key = serializers.CharField(help_text="PEM")
    valid_from = serializers.CharField()
    valid_until = serializers.CharField(allow_null=True, help_text="null: the current key")


class KeyringSerializer(serializers.Serializer):
    format = serializers.CharField()
    keys = SigningKeySerializer(many=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_auditor = serializers.BooleanField()
    mfa_enrolled = serializers.BooleanField()
    token_name = serializers.CharField(allow_null=True)
    token_expires_at = serializers.DateTimeField(allow_null=True)


class CatalogStatusSerializer(serializers.Serializer):
    sha256 = serializers.CharField(allow_null=True, help_text="Of the catalog last applied.")
    synced_at = serializers.DateTimeField(allow_null=True)
    profiles = serializers.IntegerField()
    enabled_profiles = serializers.IntegerField()
    file_sha256 = serializers.CharField(allow_null=True, help_text="Of the file on disk now.")
    in_sync = serializers.BooleanField()
    file_errors = serializers.ListField(child=serializers.CharField())
