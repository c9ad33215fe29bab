"""Every page's aria-describedby names an element the page has (axe-core checks
the pages the browser journey visits; this covers each form page, with errors)."""

import re

import pytest

PAGES = ["/", "/requests/new/", "/mfa/", "/mfa/enrol/", "/tokens/", "/notifications/", "/locks/"]


def missing_descriptions(page: str) -> list[str]:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    named = re.findall(r'aria-describedby="([^"]+)"', page)
    return [one for ref in named for one in ref.split() if one not in ids]


@pytest.mark.parametrize("url", PAGES)
def test_each_description_exists(client, people, catalog, url):
    client.force_login(people.carol)  # of the security role: the locks page has its form
    assert missing_descriptions(client.get(url).content.decode()) == []


def test_a_form_with_errors_describes_them_too(client, people, catalog):
    client.force_login(people.alice)
    page = client.post("/requests/new/", {"profile": "test-db", "duration": "forever"})
    assert missing_descriptions(page.content.decode()) == []


def test_the_lock_form_with_errors_describes_them_too(client, people, catalog, step_up):
    client.force_login(people.carol)
    step_up(people.carol)
    page = client.post("/locks/new/", {"scope": "user", "subject": "", "duration": "forever"})
    assert page.status_code == 400 and missing_descriptions(page.content.decode()) == []
