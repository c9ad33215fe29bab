"""`make run`'s embedded Celery broker keeps every folder it uses under var/
(AIRLOCK_VAR_DIR), never in the checkout: data, processed and control (the
exchange tables kombu writes to `./control` unless told otherwise)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import airlock.settings

CHECKOUT = Path(airlock.settings.__file__).parent.parent
SHOW_OPTIONS = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
)


def test_every_broker_folder_is_under_the_var_dir(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "airlock.settings",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "AIRLOCK_VAR_DIR": str(tmp_path),
    }
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_OPTIONS],
        env=env, cwd=CHECKOUT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    options = json.loads(shown.stdout)
    folders = {name: Path(value) for name, value in options.items() if "folder" in name}
    assert {"data_folder_in", "data_folder_out", "processed_folder", "control_folder"} <= set(
        folders
    )
    for name, folder in folders.items():
        assert folder.is_relative_to(tmp_path), f"{name} is {folder}"
