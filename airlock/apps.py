from django.apps import AppConfig


class AirlockConfig(AppConfig):
    """The project package as an app: deployment checks, the middleware and
    template tags every page uses, and the commands that run the database."""

    name = "airlock"

    def ready(self) -> None:
        from airlock import checks  # noqa: F401 (registers the deployment checks)
