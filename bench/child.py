"""Run one management command in this process and report its time and peak memory.

`python -m bench.child export_audit --format csv --output /tmp/x` prints one JSON
line: {"seconds": ..., "peak_rss_mb": ...}. A process of its own, so the peak
RSS is the command's and not the benchmark driver's.
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airlock.settings")

import django

django.setup()

from django.core.management import call_command

started = time.perf_counter()
call_command(*sys.argv[1:], stderr=open(os.devnull, "w"))  # noqa: SIM115
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))
