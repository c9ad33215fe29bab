"""Is each source Airlock depends on answering?"""

import json

from broker.models import AccessProfile
from lib.providers import ProviderError, get_provider


def provider_health() -> list[dict]:
    """Each enabled profile's source and its error, if any; each distinct
    provider configuration is asked once."""
    errors: dict[str, str] = {}
    results = []
    for profile in AccessProfile.objects.filter(enabled=True):
        spec = profile.definition.provider
        key = json.dumps([spec.kind, spec.config], sort_keys=True)
        if key not in errors:
            try:
                get_provider(spec.kind).healthcheck(spec.config)
                errors[key] = ""
            except ProviderError as exc:
                errors[key] = str(exc)
        results.append({"profile": profile.slug, "kind": spec.kind, "error": errors[key]})
    return results
