"""The CLI's side of the public API: where the token is kept, and calls that turn
the API's errors into messages and exit codes. No Django here."""

import json
import os
import platform
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

USER_AGENT = "airlock-cli/0.1"
HTTP_TIMEOUT = 30


class ExitCode:
    OK = 0
    ERROR = 1
    USAGE = 2
    UNAUTHENTICATED = 3  # not logged in, or the token expired or was revoked
    REFUSED = 4  # forbidden, or the request was denied, cancelled or expired
    TIMEOUT = 5
    NOT_FOUND = 6
    CONFLICT = 7
    RATE_LIMITED = 8


STATUS_EXIT = {401: ExitCode.UNAUTHENTICATED, 403: ExitCode.REFUSED, 404: ExitCode.NOT_FOUND,
               409: ExitCode.CONFLICT, 429: ExitCode.RATE_LIMITED}  # fmt: skip


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = ExitCode.ERROR):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def config_dir() -> Path:
    """Where the OS keeps per-user settings (AIRLOCK_CONFIG_DIR overrides)."""
    if override := os.environ.get("AIRLOCK_CONFIG_DIR"):
        return Path(override)
    system = platform.system()
    if system == "Darwin":
        return Path.home() / "Library" / "Application Support" / "airlock"
    if system == "Windows":
        return Path(os.environ.get("APPDATA", Path.home())) / "airlock"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "airlock"


def config_file() -> Path:
    return config_dir() / "config.json"


@dataclass
class Login:
    url: str
    token: str


def save_login(login: Login) -> Path:
    """Written 0600 inside a 0700 folder: the token acts as its owner."""
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = config_file()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"url": login.url, "token": login.token}, out)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)  # also if it existed with wider rights
    return path


def load_login() -> Login:
    """AIRLOCK_URL and AIRLOCK_TOKEN (for automation) win over the saved login."""
    url, token = os.environ.get("AIRLOCK_URL"), os.environ.get("AIRLOCK_TOKEN")
    if url and token:
        return Login(url=url.rstrip("/"), token=token)
    try:
        saved = json.loads(config_file().read_text())
        return Login(url=saved["url"], token=saved["token"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CliError(
            "not logged in: run `airlock login --url https://airlock.example.com`",
            ExitCode.UNAUTHENTICATED,
        ) from None


def forget_login() -> bool:
    try:
        config_file().unlink()
    except FileNotFoundError:
        return False
    return True


class Api:
    def __init__(self, login: Login):
        self.login = login
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {login.token}", "User-Agent": USER_AGENT}
        )

    def get(self, path: str, **params) -> Any:
        return self._call("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None) -> Any:
        return self._call("POST", path, json=body or {})

    def download(self, path: str, params: dict, output: Path) -> dict[str, str]:
        """Stream an answer into `output` (created 0600); the response headers."""
        url = f"{self.login.url}/api/v1/{path.lstrip('/')}"
        try:
            with self.session.get(url, params=params, stream=True, timeout=HTTP_TIMEOUT) as answer:
                if not answer.ok:
                    raise api_error(answer)
                descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "wb") as out:
                    for chunk in answer.iter_content(chunk_size=1 << 16):
                        out.write(chunk)
                return dict(answer.headers)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.login.url}: {exc.__class__.__name__}") from None

    def _call(self, method: str, path: str, **kwargs) -> Any:
        url = f"{self.login.url}/api/v1/{path.lstrip('/')}"
        try:
            response = self.session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.login.url}: {exc.__class__.__name__}") from None
        if response.ok:
            return response.json()
        raise api_error(response)


# C0 and C1 controls but newline and tab, and the marks that reorder text on screen.
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every character that could drive a terminal shown as \\xNN."""
    return UNPRINTABLE.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def api_error(response: requests.Response) -> CliError:
    try:
        error = response.json()["error"]
        message = error["message"]
        fields = error.get("fields") or {}
    except (ValueError, KeyError, TypeError):
        message, fields = f"the server answered {response.status_code}", {}
    if fields:
        message += ": " + "; ".join(f"{field}: {text}" for field, text in fields.items())
    if response.status_code == 401:
        message += " (run `airlock login` with a new token)"
    if response.status_code == 429:
        message += f" (retry after {response.headers.get('Retry-After', '?')} s)"
    return CliError(message, STATUS_EXIT.get(response.status_code, ExitCode.ERROR))
