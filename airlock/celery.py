import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airlock.settings")
# Celery's Django fixup runs Django's system checks when a worker starts, and
# discards what they find: about a second of a restarted worker's start while
# expiries wait (bench/README.md). `manage.py check --deploy` is where they are read.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("airlock")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
