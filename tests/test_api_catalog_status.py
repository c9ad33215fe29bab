"""Auditors see whether the catalog file on disk is the one last applied."""

import hashlib

from broker.models import CatalogState
from tests.support.catalogs import TEST_CATALOG


def test_the_applied_catalog_against_the_file_on_disk(api, people, catalog, tmp_path, settings):
    on_disk = tmp_path / "access.yaml"
    on_disk.write_text(TEST_CATALOG)
    settings.AIRLOCK_CATALOG = str(on_disk)
    applied = hashlib.sha256(TEST_CATALOG.encode()).hexdigest()

    status = api(people.dave).get("/api/v1/catalog/").json()

    state = CatalogState.objects.get()
    assert status["sha256"] == applied == state.sha256 and status["in_sync"] is True
    assert status["synced_at"].startswith(state.synced_at.strftime("%Y-%m-%dT%H:%M:%S"))
    on_disk.write_text(TEST_CATALOG.replace("max_duration: 2h", "max_duration: 90m"))
    edited = api(people.dave).get("/api/v1/catalog/").json()
    assert edited["in_sync"] is False and edited["sha256"] == applied


def test_only_auditors_see_it(api, people, catalog):
    assert api(people.alice).get("/api/v1/catalog/").status_code == 403
