"""`manage.py check --deploy` warns about settings that weaken Airlock's guards."""

from django.core.management import call_command


def test_a_per_process_cache_is_flagged_for_deployment(settings, capsys):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    call_command("check", "--deploy", "--tag", "security")
    assert "airlock.W001" in capsys.readouterr().err


def test_a_shared_cache_is_not_flagged(settings, capsys):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
        }
    }
    call_command("check", "--deploy", "--tag", "security")
    captured = capsys.readouterr()
    assert "airlock.W001" not in captured.out + captured.err
