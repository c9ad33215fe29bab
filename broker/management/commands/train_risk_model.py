from django.core.management.base import BaseCommand
from django.utils import timezone

from broker.riskmodel import store


class Command(BaseCommand):
    help = (
        "Train the model of usual access on the last 90 days now (beat does it every "
        "AIRLOCK_RISK_MODEL_TRAIN_SECONDS)."
    )

    def handle(self, *args, **options):
        model = store.retrain(timezone.now())
        if model is None:
            self.stdout.write("no requests to learn from yet: no model")
        else:
            self.stdout.write(
                f"risk model v{model.pk}: {model.observations} requests, "
                f"history {model.history_sha256[:12]}"
            )
