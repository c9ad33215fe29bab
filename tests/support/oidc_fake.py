"""A small local OpenID provider: the token and userinfo endpoints of the code flow,
with ID tokens signed by the client secret (HS256), so mozilla-django-oidc runs its
whole exchange (token request, signature and nonce checks, userinfo) against it."""

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt

CLIENT_ID = "airlock-test"
CLIENT_SECRET = "test-client-secret-for-the-local-idp"


class FakeIdP:
    def __init__(self):
        self.grants: dict[str, tuple[dict, dict]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # the token endpoint
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                grant = fake.grants.get(form.get("code", ""))
                if grant is None or form.get("client_secret") != CLIENT_SECRET:
                    return self._answer(400, {"error": "invalid_grant"})
                id_token = jwt.encode(grant[0], CLIENT_SECRET, algorithm="HS256")
                access_token = f"at-{form['code']}"
                self._answer(200, {"id_token": id_token, "access_token": access_token,
                                   "token_type": "Bearer"})  # fmt: skip

            def do_GET(self):  # the userinfo endpoint
                token = self.headers.get("Authorization", "").removeprefix("Bearer at-")
                grant = fake.grants.get(token)
                if grant is None:
                    return self._answer(401, {"error": "invalid_token"})
                self._answer(200, grant[1])

            def _answer(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = f"{self.url}/realms/airlock"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def issue(self, *, nonce: str, sub: str, id_token: dict, userinfo: dict) -> str:
        """A code the token endpoint exchanges for an ID token about `sub` (plus
        `id_token`'s claims, which may override the defaults) and for an access
        token whose userinfo is `userinfo` (with the same sub unless it says)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": sub, "nonce": nonce,
                  "iat": now, "exp": now + 300, **id_token}  # fmt: skip
        code = secrets.token_hex(8)
        self.grants[code] = ({k: v for k, v in claims.items() if v is not None},
                             {"sub": sub, **userinfo})  # fmt: skip
        return code
