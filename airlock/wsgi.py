import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airlock.settings")
application = get_wsgi_application()

# Import every view now, then keep what start-up built (about 130,000 objects
# that live as long as the process) out of the collector's full passes: each
# pass over them paused a request for 50 to 100 ms (bench/README.md, pages).
get_resolver().url_patterns  # noqa: B018 (imports the views)
gc.freeze()
