from django.conf import settings
from django.db import models

from broker.models import AccessRequest


class SlackMessage(models.Model):
    """A message Airlock posted about a request, kept so it can be updated in place."""

    class Kind(models.TextChoices):
        CHANNEL = "channel"
        APPROVER_DM = "approver_dm"
        REQUESTER_DM = "requester_dm"

    request = models.ForeignKey(
        AccessRequest, on_delete=models.CASCADE, related_name="slack_messages"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Where it was sent (a channel name or a user id), and the channel id Slack answered.
    target = models.CharField(max_length=100)
    channel = models.CharField(max_length=32)
    ts = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "ts"], name="one_row_per_message")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel}/{self.ts} for {self.request_id}"


class SlackIdentity(models.Model):
    """Who a Slack user is in Airlock. Made from a verified email or a one-time
    link code, never from a display name."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities"
    )
    team_id = models.CharField(max_length=32)
    slack_user_id = models.CharField(max_length=32)
    linked_at = models.DateTimeField()
    linked_by = models.CharField(max_length=16)  # email or code

    class Meta:
        db_table = "accounts_slackidentity"  # made by accounts, whose model it was
        constraints = [
            models.UniqueConstraint(fields=["team_id", "slack_user_id"], name="one_user_per_slack")
        ]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.slack_user_id} → {self.user}"


class SlackLinkCode(models.Model):
    """A one-time code from the web page that links the Slack user who types it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_link_code"
    )
    code_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "accounts_slacklinkcode"

    def __str__(self) -> str:
        return f"Slack link code of {self.user}"
