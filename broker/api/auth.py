"""Personal API tokens as DRF authentication: `Authorization: Bearer airlock_...`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.tokens import TokenError, token_authenticate
from broker.policy.externals import external_of


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: the session may still authenticate the caller
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("send `Authorization: Bearer <token>`")
        try:
            # The external access with the user: asked just below, and by the policy.
            token = token_authenticate(header[1].decode("ascii"), user_related=("external_access",))
        except (UnicodeDecodeError, TokenError) as exc:
            message = str(exc) if isinstance(exc, TokenError) else "not an Airlock API token"
            raise exceptions.AuthenticationFailed(message) from None
        if external_of(token.user) is not None:
            raise exceptions.AuthenticationFailed("API tokens are not for external accounts")
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a caller without credentials.
        return f'{self.keyword} realm="airlock"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token, created on the web's API tokens page.",
        }
