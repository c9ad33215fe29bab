from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken


class PerTokenRateThrottle(SimpleRateThrottle):
    """One budget per API token (so one leaked or runaway token cannot starve the
    owner's others), per signed-in user for the session, per address otherwise."""

    scope = "api"

    def get_cache_key(self, request, view) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
