"""Airlock's URLs and the floor views, for the benchmark's gunicorn only."""

from django.urls import path

from airlock.urls import urlpatterns as airlock_urlpatterns
from bench import floor

urlpatterns = [
    path("bench/floor/submit/", floor.submit),
    path("bench/floor/slack/", floor.slack_click),
    *airlock_urlpatterns,
]
