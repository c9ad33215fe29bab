"""The API's OpenAPI schema for Schemathesis, called in-process through WSGI
with the token of whichever persona the test picks."""

import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(public=True))
schema.app = get_wsgi_application()
# Whose token the next call carries (the tests switch personas).
persona = {"token": ""}


@schema.auth(refresh_interval=None)
class PersonaToken:
    """Applied by schemathesis itself, so its auth checks know the token is real."""

    def get(self, case, context) -> str:
        return persona["token"]

    def set(self, case, token: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
