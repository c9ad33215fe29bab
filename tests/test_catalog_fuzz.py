"""Hostile catalogs: whatever the file holds, the check answers with errors that
name what is wrong, never a traceback."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.catalog.load import CatalogError, parse_catalog
from tests.support.catalogs import TEST_CATALOG

BASE = yaml.safe_load(TEST_CATALOG)
scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
KEYS = ["id", "title", "provider", "requesters", "approvers", "approvals_required",
        "max_duration", "default_duration", "ticket_pattern", "pending_ttl", "extension",
        "sensitivity", "policy", "slack_channel", "kind", "config"]  # fmt: skip


def check(raw: bytes) -> None:
    try:
        parse_catalog(raw)
    except CatalogError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw):
    check(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=400))
def test_arbitrary_text(text):
    check(text.encode())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(profile=st.integers(0, len(BASE["profiles"]) - 1), key=st.sampled_from(KEYS), value=values)
def test_one_field_of_a_good_catalog_replaced_with_anything(profile, key, value):
    spec = yaml.safe_load(TEST_CATALOG)
    spec["profiles"][profile][key] = value
    check(yaml.safe_dump(spec).encode())
