"""Checks of the settings for a deployment, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core import checks

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.security, deploy=True)
def shared_cache(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Slack's replay guard and the sign-in and API throttles keep their counters
    in the cache: one per process would let a replay or a guess through another
    web process."""
    if settings.CACHES["default"]["BACKEND"] not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            "the cache is per process: with more than one web process, a replayed Slack "
            "request or a throttled sign-in can get through another one",
            hint="set CACHE_URL=redis://... (shared by every web process)",
            id="airlock.W001",
        )
    ]
