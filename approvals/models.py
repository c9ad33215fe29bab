from django.conf import settings
from django.db import models

from audit.models import Source


class Approval(models.Model):
    """One approver's decision on one request. Nobody decides twice."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        DENY = "deny"

    request = models.ForeignKey(
        "broker.AccessRequest", on_delete=models.PROTECT, related_name="decisions"
    )
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
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}d {self.request_id}"
