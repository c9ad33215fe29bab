"""The audit trail's storage: every event as one link of a hash chain, and the
head that writers lock to append. The bottom of Airlock: it imports no other app."""

from django.db import models


class Source(models.TextChoices):
    """The channel an action came through, recorded in every audit event."""

    WEB = "web"
    SLACK = "slack"
    API = "api"
    CLI = "cli"
    SCIM = "scim"  # the identity provider, provisioning
    SYSTEM = "system"


class AuditEvent(models.Model):
    """One link of the hash chain. Rows are never updated or deleted.

    The actor is stored by id and name, not as a foreign key, so the trail
    outlives the accounts it mentions.
    """

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        # The table kept its name when the model moved here from the core.
        db_table = "broker_auditevent"
        ordering = ["seq"]
        indexes = [
            models.Index(
                fields=["target_type", "target_id"], name="broker_audi_target__eba826_idx"
            ),
            # /insights/ and /metrics: events of some actions (provider errors) in a period.
            models.Index(fields=["action", "created_at"], name="audit_action_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor or 'system'}"


class AuditChainHead(models.Model):
    """The single row writers lock to append to the chain, so it never forks.

    It also remembers the last link, which lets `verify_audit` notice events
    deleted from the end of the chain.
    """

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "broker_auditchainhead"

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class SigningKey(models.Model):
    """A key that signs exports, anchors and archives: its public half only, and
    when it was in use, so that what it signed verifies after it is rotated out."""

    key_id = models.CharField(max_length=16, unique=True)
    public_key = models.TextField()  # PEM
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"signing key {self.key_id}"


class ChainAnchor(models.Model):
    """An anchor Airlock wrote to the witness: a local note of where it is, for the
    pages and the evidence pack. Verification reads the witness itself, never this."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    anchored_at = models.DateTimeField()
    location = models.CharField(max_length=500)

    class Meta:
        indexes = [models.Index(fields=["seq"], name="audit_anchor_seq_idx")]

    def __str__(self) -> str:
        return f"anchor of #{self.seq}"
