"""A small local fake of Slack's Web API: records every call and answers the way
Slack does (ok, ts, channel, view.id; errors such as ratelimited with Retry-After)."""

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class FakeSlack:
    def __init__(self, port: int = 0):
        self.calls: list[tuple[str, dict]] = []
        self.users: dict[str, dict] = {}
        self.failures: dict[str, list[tuple[int, dict, dict]]] = {}
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                    for key in ("blocks", "view"):
                        if isinstance(params.get(key), str):
                            params[key] = json.loads(params[key])
                method = self.path.rsplit("/", 1)[-1]
                status, headers, body = fake.answer(method, params)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()

    def fail_next(self, method: str, error: str, status: int = 200, retry_after: int = 0):
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        self.failures.setdefault(method, []).append(
            (status, headers, {"ok": False, "error": error})
        )

    def answer(self, method: str, params: dict) -> tuple[int, dict, dict]:
        with self._lock:
            pending = self.failures.get(method)
            if pending:
                self.calls.append((method, {**params, "_failed": True}))
                return pending.pop(0)
            self.calls.append((method, params))
            ts = f"1700000000.{next(self._ts):06d}"
        if method == "chat.postMessage":
            channel = params["channel"]
            # A DM to a user lands in that user's IM channel, as on Slack.
            channel_id = (
                "D" + channel[1:]
                if channel.startswith("U")
                else "C" + str(abs(hash(channel)) % 10**8)
            )
            return 200, {}, {"ok": True, "channel": channel_id, "ts": ts}
        if method == "chat.update":
            return 200, {}, {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        if method in ("views.open", "views.publish", "views.update"):
            return 200, {}, {"ok": True, "view": {"id": f"V{ts[-6:]}", **params.get("view", {})}}
        if method == "users.info":
            user = self.users.get(params.get("user", ""))
            if user is None:
                return 200, {}, {"ok": False, "error": "user_not_found"}
            return 200, {}, {"ok": True, "user": user}
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": ts}
        return 200, {}, {"ok": True}

    def add_user(self, slack_id: str, email: str, confirmed: bool = True, team: str = "T1") -> None:
        """A Slack user as users.info describes them; `team` is their own workspace
        (another one for a Slack Connect user from a partner's workspace)."""
        self.users[slack_id] = {
            "id": slack_id,
            "team_id": team,
            "deleted": False,
            "is_bot": False,
            "is_email_confirmed": confirmed,
            "profile": {"email": email},
        }

    def made(self, method: str) -> list[dict]:
        return [params for name, params in self.calls if name == method]

    def clear(self) -> None:
        self.calls.clear()
