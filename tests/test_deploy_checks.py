"""`manage.py check --deploy` warns about settings that weaken Airlock's guards."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_a_per_process_cache_is_flagged_for_deployment(settings, capsys, db):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    call_command("check", "--deploy", "--tag", "security")
    assert "airlock.W001" in capsys.readouterr().err


def test_a_shared_cache_is_not_flagged(settings, capsys, db):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    call_command("check", "--deploy", "--tag", "security")
    captured = capsys.readouterr()
    assert "airlock.W001" not in captured.out + captured.err


def test_evidence_without_signatures_or_witness_is_flagged(settings, capsys, db, monkeypatch):
    monkeypatch.delenv("AIRLOCK_AUDIT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("AIRLOCK_AUDIT_SIGNING_KEY_FILE", raising=False)
    settings.AIRLOCK_WITNESS_BUCKET = ""
    call_command("check", "--deploy", "--tag", "security")
    err = capsys.readouterr().err
    assert "airlock.W004" in err and "airlock.W005" in err


def test_a_signing_key_and_a_witness_are_not_flagged(settings, capsys, db):
    settings.AIRLOCK_WITNESS_BUCKET = "acme-airlock-witness"
    call_command("check", "--deploy", "--tag", "security")
    captured = capsys.readouterr()
    assert "airlock.W004" not in captured.err and "airlock.W005" not in captured.err


def test_an_unreadable_signing_key_is_an_error(capsys, db, monkeypatch):
    monkeypatch.setenv("AIRLOCK_AUDIT_SIGNING_KEY", "not a key")
    with pytest.raises(SystemCheckError, match=r"airlock\.E004"):
        call_command("check", "--deploy", "--tag", "security")


# --- HTTPS: secure by default, with debug off ----------------------------------

DEPLOYMENT_VARIABLES = (
    "DJANGO_DEBUG", "AIRLOCK_HTTPS", "AIRLOCK_BEHIND_TLS_PROXY", "AIRLOCK_HSTS_SECONDS",
    "AIRLOCK_HSTS_PRELOAD", "AIRLOCK_SECURE_COOKIES", "CACHE_URL",
)  # fmt: skip


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process, so the settings read this environment as a
    deployment would: debug off unless asked, nothing else set but `env`."""
    base = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**base, **env},
        cwd=settings_file().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_file() -> Path:
    import airlock.settings

    return Path(airlock.settings.__file__)


def deployed_settings(**env: str) -> dict:
    names = [
        "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_REDIRECT_EXEMPT", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    ]  # fmt: skip
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    result = manage("shell", "--no-imports", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# A deployment whose database cannot be reached here: the role check says nothing.
# Its audit chain is anchored on a witness (the signing key is the suite's own).
WITNESSED = {"AIRLOCK_WITNESS_BUCKET": "acme-airlock-witness"}
TWO_ROLES = {"DATABASE_URL": "postgres://airlock_runtime@127.0.0.1:1/airlock", **WITNESSED}


def warnings_of(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"\((\S+\.[WE]\d+)\)", result.stderr)


def test_with_debug_off_and_a_shared_cache_check_deploy_is_clean():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        CACHE_URL="redis://127.0.0.1:6379/11", **TWO_ROLES,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_with_a_per_process_cache_only_its_own_warning_remains():
    result = manage("check", "--deploy", **TWO_ROLES)
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == ["airlock.W001"]


@pytest.mark.django_db(transaction=True)
def test_connecting_as_a_superuser_or_the_tables_owner_is_flagged():
    from tests.support.chaos import airlock_database_url

    result = manage("check", "--deploy", CACHE_URL="redis://127.0.0.1:6379/11",
                    DATABASE_URL=airlock_database_url(),  # the suite's superuser
                    **WITNESSED)  # fmt: skip
    assert warnings_of(result) == ["airlock.W002"]
    assert "DATABASE_MIGRATE_URL" in result.stderr


def test_sqlite_has_no_roles_to_separate(tmp_path):
    result = manage("check", "--deploy", CACHE_URL="redis://127.0.0.1:6379/11",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}")  # fmt: skip
    assert "airlock.W002" not in result.stderr


def test_production_is_https_only_by_default():
    deployed = deployed_settings()
    assert deployed["DEBUG"] is False and deployed["SECURE_SSL_REDIRECT"] is True
    assert deployed["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert deployed["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert deployed["SECURE_HSTS_PRELOAD"] is False  # a commitment for the whole domain: opt in
    assert deployed["SECURE_PROXY_SSL_HEADER"] is None  # trusted only when asked
    assert deployed["SESSION_COOKIE_SECURE"] is deployed["CSRF_COOKIE_SECURE"] is True


def test_behind_a_tls_proxy_its_forwarded_scheme_is_trusted():
    deployed = deployed_settings(AIRLOCK_BEHIND_TLS_PROXY="1")
    assert deployed["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert deployed["SECURE_SSL_REDIRECT"] is True


@pytest.mark.parametrize("env", [{"AIRLOCK_HTTPS": "off"}, {"DJANGO_DEBUG": "1"}])
def test_plain_http_for_development_is_an_explicit_choice(env):
    deployed = deployed_settings(**env)
    assert deployed["SECURE_SSL_REDIRECT"] is False and deployed["SECURE_HSTS_SECONDS"] == 0
    assert deployed["SESSION_COOKIE_SECURE"] is False


def test_http_is_redirected_but_the_probes_answer(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True  # as deployed (the suite's client speaks plain HTTP)
    response = client.get("/login/")
    assert response.status_code == 301 and response.url == "https://testserver/login/"
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)  # an answer, not a redirect
    secure = client.get("/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_behind_a_proxy_the_forwarded_scheme_counts(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="http").status_code == 301


def test_a_missing_chart_library_is_flagged(settings, tmp_path):
    from airlock.checks import chart_library

    assert chart_library(None) == []
    settings.STATICFILES_DIRS = [tmp_path]  # a deployment that never ran make
    [warning] = chart_library(None)
    assert warning.id == "airlock.W004" and "/insights/" in warning.msg
