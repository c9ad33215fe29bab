from django.conf import settings
from django.db import models


class StepUp(models.Model):
    """When a user last proved an MFA factor. Approvals and reveals read it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_up"
    )
    verified_at = models.DateTimeField()
    device = models.CharField(max_length=200)

    def __str__(self) -> str:
        return f"{self.user} verified at {self.verified_at:%Y-%m-%d %H:%M:%S}"
