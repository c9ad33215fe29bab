"""Airlock's settings with the benchmark's floor views added (bench/floor.py):
gunicorn runs with this module only inside `make bench`."""

from airlock.settings import *  # noqa: F403 (the whole of Airlock's settings, then one change)

ROOT_URLCONF = "bench.urls"
