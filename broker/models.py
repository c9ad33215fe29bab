import uuid
from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from audit.models import Source
from broker.catalog.spec import ProfileSpec


class AccessProfile(models.Model):
    """A profile from the catalog: `spec` is its catalog entry as stored, and
    `definition` the same entry validated."""

    slug = models.SlugField(max_length=63, unique=True)
    title = models.CharField(max_length=200)
    provider_kind = models.CharField(max_length=64)
    spec = models.JSONField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @cached_property
    def definition(self) -> ProfileSpec:
        """The profile as the catalog defines it (validated); its rules are `.policy`."""
        return ProfileSpec.model_validate(self.spec)


class CatalogState(models.Model):
    """The catalog-wide settings last applied (one row): risk weights, business
    hours, what happens to grants of people who lose their standing."""

    risk = models.JSONField(default=dict)
    # The catalog's `on_eligibility_lost`, "revoke" or "keep" (CatalogSpec, catalog/spec.py).
    on_eligibility_lost = models.CharField(max_length=16, default="revoke")
    # The catalog's `security` principals (who may lock) and `containment` rules.
    security = models.JSONField(default=dict)
    containment = models.JSONField(default=dict)
    # The catalog's `reviews` schedules (ReviewSchedule, catalog/spec.py).
    reviews = models.JSONField(default=list)
    # The catalog's `externals` rules (ExternalRules, catalog/spec.py).
    externals = models.JSONField(default=dict)
    sha256 = models.CharField(max_length=64, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"catalog {self.sha256[:12]}"


class AccessRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        CANCELLED = "cancelled"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(AccessProfile, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    duration = models.DurationField()
    reason = models.TextField(blank=True)
    ticket = models.CharField(max_length=100, blank=True)
    # For profiles that sign a key (vault.ssh): the engineer's public key, never a secret.
    ssh_public_key = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField()
    pending_until = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # How many approvals it needs in all (the profile's, plus any the risk adds),
    # its risk score with the factors behind it, and the policy's reasoning.
    approvals_required = models.PositiveSmallIntegerField(default=1)
    risk_score = models.PositiveSmallIntegerField(default=0)
    risk_factors = models.JSONField(default=list, blank=True)
    # The client's /24 or /48 when it asked ("" from Slack): what the model learns
    # "usual networks" from.
    network = models.CharField(max_length=64, blank=True)
    # The learned model's 0-100 score and its version, when a model was trained.
    unusual_score = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_model = models.ForeignKey(
        "RiskModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy_trace = models.JSONField(default=list, blank=True)
    break_glass = models.BooleanField(default=False)
    # A change window: approved now, credentials minted at this time.
    start_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Set when this request asks for more time on a live grant instead of a new one.
    extends = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="extension_requests"
    )

    class ExtensionOutcome(models.TextChoices):
        APPLIED = "applied"
        FAILED = "failed"  # for good: the reason is in its grant.extension_failed event

    # An approved extension is settled once, applied or failed; empty until then.
    extension_outcome = models.CharField(
        max_length=8, choices=ExtensionOutcome.choices, blank=True, default=""
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "pending_until"]),
            # The approver queue: pending requests of some profiles, oldest first.
            models.Index(fields=["status", "profile", "created_at"]),
            models.Index(fields=["created_at"]),  # /insights/: the requests of a period
            # Risk: a person's last requests of a profile (broker/policy/risk.py).
            models.Index(fields=["requester", "profile", "created_at"]),
            # The risk model's context: a person's latest requests.
            models.Index(fields=["requester", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.requester} → {self.profile} ({self.status})"


class Approval(models.Model):
    """One approver's decision on one request. Nobody decides twice."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        DENY = "deny"

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="decisions")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_decisions"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    mfa_verified_at = models.DateTimeField()
    mfa_method = models.CharField(max_length=16, blank=True)  # totp or backup_code
    created_at = models.DateTimeField()
    # Which approval step (0-based) this decision was made in.
    step = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "approvals_approval"  # made by the approvals app, whose model it was
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}d {self.request_id}"


class Grant(models.Model):
    """The access an approved request gives.

    There is no "activating" state: activation holds the row lock across the
    provider call and commits the outcome with it, so a worker that dies
    mid-call leaves the grant `scheduled` for an idempotent retry instead of
    stuck in between.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        ACTIVE = "active"
        REVOKING = "revoking"
        REVOKED = "revoked"
        FAILED = "failed"
        REVOKE_FAILED = "revoke_failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.OneToOneField(AccessRequest, on_delete=models.PROTECT, related_name="grant")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    duration = models.DurationField()
    created_at = models.DateTimeField()
    activated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)
    # What the provider needs to revoke or check the credential; never a secret.
    handle = models.JSONField(default=dict, blank=True)
    # The credential, Fernet-encrypted, kept only until it is revealed or the grant ends.
    secret = models.BinaryField(null=True, editable=False)
    revealed_at = models.DateTimeField(null=True, blank=True)
    activation_attempts = models.PositiveSmallIntegerField(default=0)
    extensions = models.PositiveSmallIntegerField(default=0)
    revoke_attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["ended_at"]),  # /insights/: what was live in a period
        ]

    def __str__(self) -> str:
        return f"grant {self.id} ({self.status})"

    @property
    def profile(self) -> AccessProfile:
        return self.request.profile


class BreakGlassReview(models.Model):
    """Every break-glass grant is reviewed afterwards by an approver, with notes."""

    request = models.OneToOneField(AccessRequest, on_delete=models.PROTECT, related_name="review")
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notes = models.TextField(blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"review of {self.request_id} ({'closed' if self.closed_at else 'open'})"


class Alert(models.Model):
    """A pattern worth a human look, with the audit events that show it."""

    kind = models.CharField(max_length=32)
    # One alert per pattern occurrence: the detector's key for it.
    key = models.CharField(max_length=200, unique=True)
    message = models.TextField()
    evidence = models.JSONField(default=list)  # audit event sequence numbers
    # What it is about: {"user": ..., "profile": ..., "target": ...}, each if known.
    subjects = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # When the catalog's containment rules looked at it, and the lock they placed.
    containment_checked_at = models.DateTimeField(null=True, blank=True)
    lock = models.ForeignKey(
        "Lock", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class OrphanSighting(models.Model):
    """A credential live at its source that no grant explained when the reconciler
    looked. Kept until it is explained, gone, or revoked, so that the periodic
    reconciler revokes only what stayed unexplained longer than any activation
    takes to record the credential it minted."""

    key = models.CharField(max_length=64, unique=True)  # sha256 of kind and handle
    kind = models.CharField(max_length=32)
    profile = models.CharField(max_length=100)
    handle = models.JSONField()
    first_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind} orphan seen {self.first_seen:%Y-%m-%d %H:%M:%S}"


class Lock(models.Model):
    """A stop on a user, a profile or a provider target (every profile whose
    credentials live there). Placing it revoked what was live in its scope; while
    it holds, nothing in its scope is requested, approved, activated, extended or
    revealed, and a locked user decides nothing. It ends when two people of the
    security role lift it (one proposes, another confirms) or at `ends_at`."""

    class Scope(models.TextChoices):
        USER = "user"
        PROFILE = "profile"
        TARGET = "target"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    # One of these three, by scope. A user is held by key, so renaming escapes nothing.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    profile = models.ForeignKey(
        AccessProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target = models.CharField(max_length=200, blank=True)  # e.g. postgres:AIRLOCK_PG_DSN_PAYMENTS
    reason = models.TextField()
    # Nobody when automatic containment placed it; `evidence` then names the audit events.
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    lift_proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_proposed_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)
    # Set when lifted (by `ended_by`) or when `ends_at` passed (nobody).
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            models.Index(
                fields=["scope", "target"], condition=models.Q(ended_at=None), name="lock_holding"
            )
        ]

    def __str__(self) -> str:
        return f"lock on {self.scope} {self.subject}"

    @property
    def subject(self) -> str:
        """What is locked, as people name it: a username, a profile slug or a target."""
        if self.scope == self.Scope.USER:
            return self.user.get_username()
        if self.scope == self.Scope.PROFILE:
            return self.profile.slug
        return self.target


class TaskTiming(models.Model):
    """How long Celery tasks waited in the queue and ran, as a histogram per task:
    one row per bucket, with the count and total seconds of what fell in it.
    Workers add to it every few seconds (broker/task_timing.py); /metrics reads it."""

    class Kind(models.TextChoices):
        WAIT = "wait"  # from publication (or its ETA) to a worker starting it
        RUN = "run"

    task = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    le = models.FloatField()  # the bucket's upper bound in seconds; infinity for the last
    count = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "kind", "le"], name="task_timing_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.kind} <= {self.le}s: {self.count}"


class InsightsDay(models.Model):
    """One UTC day of access for /insights/, rolled up from requests, grants and
    the audit trail (broker/lifecycle/insights.py), per profile, channel and
    team: `team` is "" for everyone, else a group the requester was in when the
    day was rolled up (a request counts for everyone and for each of its teams).
    Histograms map a bucket's upper bound to a count."""

    day = models.DateField()
    profile = models.ForeignKey(AccessProfile, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16)
    team = models.CharField(max_length=150, blank=True)
    outcomes = models.JSONField(default=dict)  # outcome -> requests asked that day
    held_seconds = models.FloatField(default=0.0)  # live grant time within the day
    latency = models.JSONField(default=dict)  # minutes to a person's decision
    lag = models.JSONField(default=dict)  # seconds from expiry or revoke to dead at source
    lag_max = models.FloatField(default=0.0)
    provider_errors = models.PositiveIntegerField(default=0)
    revocation_failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "profile", "source", "team"], name="insights_day_slice"
            )
        ]
        indexes = [models.Index(fields=["team", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.profile_id} {self.source} {self.team or 'everyone'}"


class InsightsRolledDay(models.Model):
    """A day whose InsightsDay rows are written (a day with no activity has none)."""

    day = models.DateField(unique=True)
    rolled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.day} rolled up at {self.rolled_at:%Y-%m-%d %H:%M}"


class RiskModel(models.Model):
    """One trained version of the model of usual access (broker/riskmodel): kept,
    because each scored request names the version that scored it."""

    trained_at = models.DateTimeField()
    observations = models.PositiveIntegerField()
    # sha256 of the training history: the same history trains the same model.
    history_sha256 = models.CharField(max_length=64)
    params = models.JSONField()

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"risk model v{self.pk}"


class RiskLabel(models.Model):
    """An approver's or the security team's word on a request: it was unusual, or
    normal. Unusual ones are left out of the next training; both are ground truth
    for `evaluate_risk --labels`."""

    class Label(models.TextChoices):
        UNUSUAL = "unusual"
        NORMAL = "normal"

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="labels")
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    label = models.CharField(max_length=8, choices=Label.choices)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "labelled_by"], name="one_label_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.request_id})"


class AccessReview(models.Model):
    """A campaign that certifies who may ask for a profile (or is in a group): each
    eligible person kept or removed by a reviewer before the deadline; then sealed."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class Unreviewed(models.TextChoices):
        KEEP = "keep"  # kept, flagged as not reviewed
        REMOVE = "remove"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    # What is reviewed: who may ask for this profile, or who is in this group.
    profile = models.ForeignKey(
        AccessProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group_name = models.CharField(max_length=150, blank=True)
    # Principals (catalog form) who review; empty: the profile's approvers, or the
    # security role for a group.
    reviewers = models.JSONField(default=dict, blank=True)
    # Each person reviewed by their line manager where Airlock knows one it may ask
    # (policy/reviews.py, line_manager); the others by the reviewers above.
    by_managers = models.BooleanField(default=False)
    unreviewed = models.CharField(max_length=8, choices=Unreviewed.choices)
    # The catalog schedule that started it ("" on demand), and who did on demand.
    schedule = models.CharField(max_length=100, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The signed evidence document (audit/review_evidence.py), once closed.
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "due_at"]), models.Index(fields=["schedule"])]
        constraints = [
            # One open review of a subject at a time, whoever starts it (beat or a person).
            models.UniqueConstraint(
                Coalesce("profile", models.Value(0)),
                models.F("group_name"),
                condition=models.Q(status="open"),
                name="one_open_review_per_subject",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def subject(self) -> str:
        return f"profile {self.profile.slug}" if self.profile_id else f"group {self.group_name}"


class AccessReviewItem(models.Model):
    """One person in a campaign: the facts the reviewer was shown, and the decision."""

    class Decision(models.TextChoices):
        PENDING = "pending"
        KEEP = "keep"
        REMOVE = "remove"

    review = models.ForeignKey(AccessReview, on_delete=models.PROTECT, related_name="items")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Captured when the campaign started, so the evidence says what was shown.
    facts = models.JSONField(default=dict)
    # In a review by managers, the manager asked to review this person, as at the
    # start (none: the campaign's other reviewers).
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices, default=Decision.PENDING)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Kept because nobody reviewed it by the deadline (the campaign's rule).
    unreviewed = models.BooleanField(default=False)

    class Meta:
        ordering = ["person__username"]
        constraints = [
            models.UniqueConstraint(fields=["review", "person"], name="one_item_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.review}: {self.decision}"


class ReviewRemoval(models.Model):
    """An access review took a person's eligibility away: an overlay over the
    catalog (a profile they may no longer ask for, or a group they are kept out
    of, whatever the file says) until it is lifted."""

    item = models.OneToOneField(AccessReviewItem, on_delete=models.PROTECT, related_name="removal")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    profile = models.ForeignKey(
        AccessProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group_name = models.CharField(max_length=150, blank=True)
    removed_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["person", "lifted_at"])]

    def __str__(self) -> str:
        return f"{self.person} out of {self.profile or self.group_name}"


class ExternalAccess(models.Model):
    """A third party (a vendor's engineer, a contractor) invited by a sponsor, an
    employee: which profiles they may ask for, until their contract ends."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="external_access"
    )
    sponsor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sponsored"
    )
    company = models.CharField(max_length=200)
    contract_ends_at = models.DateTimeField()
    profiles = models.ManyToManyField(AccessProfile, related_name="+")
    invited_at = models.DateTimeField()
    # sha256 of the one-time invitation; emptied once used.
    invitation_sha256 = models.CharField(max_length=64, blank=True)
    invitation_expires_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    reminded_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Suspended (their sponsor left) or ended (the contract): the account is disabled.
    suspended_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["contract_ends_at"])]

    def __str__(self) -> str:
        return f"{self.user} (external, {self.company})"
