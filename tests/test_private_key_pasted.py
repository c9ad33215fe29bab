"""A private key pasted where the SSH public key goes: refused, never echoed back,
and the person is told to treat it as exposed, on the web, the API and Slack's path
(the lifecycle), whatever the profile."""

import pytest

from broker.lifecycle import InvalidRequest
from broker.models import AccessRequest

SECRET_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PRIVATE_KEY = (
    f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.mark.parametrize("slug", ["vault-ssh", "test-db"])
def test_the_web_form_comes_back_without_it_and_says_it_is_exposed(client, people, catalog, slug):
    client.force_login(people.alice)
    form = {"profile": slug, "duration": "1h", "reason": "INC-3", "ssh_public_key": PRIVATE_KEY}
    response = client.post("/requests/new/", form)
    page = response.content.decode()
    assert response.status_code == 400
    assert SECRET_BODY not in page and "BEGIN OPENSSH" not in page
    assert "treat it as exposed" in page and "ssh-keygen -t ed25519" in page
    assert 'value="INC-3"' in page or "INC-3</textarea>" in page  # the rest is kept
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize("slug", ["vault-ssh", "test-db"])
def test_the_api_refuses_it_without_echoing_it(api, people, catalog, slug):
    body = {"profile": slug, "duration": "1h", "reason": "INC-3", "ssh_public_key": PRIVATE_KEY}
    response = api(people.alice).post("/api/v1/requests/create/", body, format="json")
    assert response.status_code == 400
    assert SECRET_BODY not in response.content.decode()
    assert "treat it as exposed" in response.json()["error"]["fields"]["ssh_public_key"]
    assert not AccessRequest.objects.exists()


def test_slacks_path_gets_the_same_message_for_a_profile_without_ssh(people, submit):
    with pytest.raises(InvalidRequest) as caught:
        submit(people.alice, slug="test-db", ssh_public_key=PRIVATE_KEY)
    assert "treat it as exposed" in caught.value.fields["ssh_public_key"]
