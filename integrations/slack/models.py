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
