"""Third parties: invited by a sponsor for profiles open to externals that the
sponsor may ask for; the sponsor approves first; stricter limits; disabled at the
contract's end (grants dead at the source); the sponsor is reminded, and if they
leave their externals are suspended until someone takes them over."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from audit.models import AuditEvent
from broker import lifecycle
from broker.models import AccessProfile, AccessRequest, ExternalAccess, Grant
from broker.policy.approvers import decision_refusal
from broker.policy.externals import invitation_digest
from broker.policy.requesters import can_request
from broker.selectors.queue import approval_queue
from tests.support.externals import PASSWORD, invite_zoe, open_test_db_to_externals
from tests.support.grants import credential_works, reveal
from tests.support.people import WEB


@pytest.fixture
def opened(catalog):
    open_test_db_to_externals()
    return {p.slug: p for p in AccessProfile.objects.all()}


def ask(user, slug="test-db", duration="30m", **kw):
    from lib.durations import parse_duration

    return lifecycle.access_request_submit(
        requester=user, profile=AccessProfile.objects.get(slug=slug),
        duration=parse_duration(duration), reason="vendor maintenance", info=WEB, **kw,
    )  # fmt: skip


def test_an_invitation_makes_an_account_without_a_password_until_accepted(opened, people, step_up):
    access, token = invite_zoe(people, step_up, accept=False)
    zoe = access.user
    assert not zoe.has_usable_password() and access.sponsor == people.alice
    assert list(access.profiles.values_list("slug", flat=True)) == ["test-db"]
    assert not can_request(zoe, opened["test-db"])  # not accepted yet
    invited = AuditEvent.objects.get(action="external.invited")
    assert (invited.actor, invited.data["company"]) == ("alice", "Acme")
    assert token not in str(invited.data) and token not in access.invitation_sha256

    digest = invitation_digest(token)
    user = lifecycle.external_accept(invitation_sha256=digest, password=PASSWORD, info=WEB)
    assert user.check_password(PASSWORD)
    assert can_request(user, opened["test-db"]) and not can_request(user, opened["vault-token"])
    with pytest.raises(lifecycle.NotFound, match="not valid"):
        lifecycle.external_accept(
            invitation_sha256=digest, password="another long passphrase", info=WEB
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"username": "alice"}, "username"),
        ({"username": "zo e"}, "username"),
        ({"email": "not-an-address"}, "email"),
        ({"company": ""}, "company"),
        ({"company": "Acme\x1b[31m"}, "company"),
        ({"contract_ends_at": timedelta(days=-1)}, "contract_ends_at"),
        ({"contract_ends_at": timedelta(days=400)}, "contract_ends_at"),
        ({"profiles": "test-db-critical"}, "profiles"),  # not open to externals
        ({"profiles": ""}, "profiles"),
    ],
)
def test_a_bad_invitation_is_refused_and_makes_nothing(opened, people, step_up, change, field):
    step_up(people.alice)
    values = {"username": "zoe", "email": "", "company": "Acme",
              "contract_ends_at": timedelta(days=30), "profiles": "test-db"} | change  # fmt: skip
    values["contract_ends_at"] = timezone.now() + values["contract_ends_at"]
    slugs = [values["profiles"]] if values["profiles"] else []
    values["profiles"] = list(AccessProfile.objects.filter(slug__in=slugs))
    with pytest.raises(lifecycle.InvalidRequest) as refused:
        lifecycle.external_invite(sponsor=people.alice, info=WEB, **values)
    assert field in refused.value.fields
    assert not ExternalAccess.objects.exists()
    assert not get_user_model().objects.filter(username="zoe").exists()


def test_only_an_employee_who_may_ask_for_it_sponsors_it(opened, people, step_up):
    step_up(people.charlie)  # not an engineer: may not ask for test-db himself
    with pytest.raises(lifecycle.InvalidRequest, match="not valid"):
        lifecycle.external_invite(
            sponsor=people.charlie, username="zoe", email="", company="Acme",
            contract_ends_at=timezone.now() + timedelta(days=30),
            profiles=[opened["test-db"]], info=WEB,
        )  # fmt: skip
    zoe, _ = invite_zoe(people, step_up)
    with pytest.raises(lifecycle.NotAllowed, match="only employees"):
        lifecycle.external_invite(
            sponsor=zoe.user, username="zed", email="", company="Acme",
            contract_ends_at=timezone.now() + timedelta(days=30),
            profiles=[opened["test-db"]], info=WEB,
        )  # fmt: skip


def test_stricter_for_externals_shorter_no_break_glass_sponsor_first(opened, people, step_up):
    zoe = invite_zoe(people, step_up)[0].user
    with pytest.raises(lifecycle.InvalidRequest) as too_long:
        ask(zoe, duration="1h")  # test-db allows 2h; externals 30m
    assert "at most 30m" in too_long.value.fields["duration"]

    asked = ask(zoe)
    assert asked.status == "pending" and asked.approvals_required == 2  # sponsor + profile
    assert any(s["rule"] == "external" for s in asked.policy_trace)
    # bob approves test-db, but the sponsor is first.
    refusal = decision_refusal(people.bob, asked)
    assert refusal is not None and "step 1" in refusal.message
    assert asked in approval_queue(people.alice) and asked not in approval_queue(people.bob)
    step_up(people.alice)
    lifecycle.access_request_approve(request_id=asked.pk, approver=people.alice, info=WEB)
    assert asked in approval_queue(people.bob)
    step_up(people.bob)
    lifecycle.access_request_approve(request_id=asked.pk, approver=people.bob, info=WEB)
    assert AccessRequest.objects.get(pk=asked.pk).status == "approved"


def holding_test_db(access, people, step_up, pg_target) -> tuple[Grant, dict]:
    """zoe's test-db, approved by her sponsor alice then bob: live, and working."""
    asked = ask(access.user)
    for approver in (people.alice, people.bob):
        step_up(approver)
        lifecycle.access_request_approve(request_id=asked.pk, approver=approver, info=WEB)
    grant = Grant.objects.get(request=asked)
    lifecycle.grant_activate(grant_id=grant.pk)
    credential = reveal(grant, access.user, step_up)
    assert credential_works(credential, pg_target, None)
    return grant, credential


def test_the_contract_end_disables_the_account_and_kills_the_grant_at_the_source(
    opened, people, step_up, pg_target, django_capture_on_commit_callbacks
):
    access, _ = invite_zoe(people, step_up, days=30)
    zoe = access.user
    grant, credential = holding_test_db(access, people, step_up, pg_target)

    with django_capture_on_commit_callbacks(execute=True):
        counts = lifecycle.externals_tick(now=access.contract_ends_at + timedelta(minutes=1))
    assert counts["ended"] == 1
    zoe.refresh_from_db()
    assert not zoe.is_active
    grant.refresh_from_db()
    assert grant.status == "revoking"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert not credential_works(credential, pg_target, None)
    ended = AuditEvent.objects.get(action="external.ended")
    assert (ended.reason, ended.data["sponsor"]) == ("the contract ended", "alice")


def test_the_sponsor_is_reminded_14_and_3_days_before(opened, people, step_up):
    access, _ = invite_zoe(people, step_up, days=30)
    end = access.contract_ends_at
    assert lifecycle.externals_tick(now=end - timedelta(days=20))["reminded"] == 0
    assert lifecycle.externals_tick(now=end - timedelta(days=13))["reminded"] == 1
    assert lifecycle.externals_tick(now=end - timedelta(days=12))["reminded"] == 0
    assert lifecycle.externals_tick(now=end - timedelta(days=2))["reminded"] == 1
    days = [e.data["days_left"] for e in AuditEvent.objects.filter(
        action="external.contract_ending").order_by("seq")]  # fmt: skip
    assert days == [13, 2]


def test_a_sponsor_who_leaves_suspends_their_externals_until_handed_over(
    opened, people, step_up, django_capture_on_commit_callbacks
):
    access, _ = invite_zoe(people, step_up)
    pending = ask(access.user)
    people.alice.is_active = False
    people.alice.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.externals_tick()["suspended"] == 1
    access.refresh_from_db()
    assert access.suspended_at is not None and not access.user.is_active
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"

    Group.objects.get(name="engineers").user_set.add(people.bob)  # bob may ask for test-db
    step_up(people.erin)  # of the security role
    with pytest.raises(lifecycle.InvalidRequest, match="may not ask for test-db"):
        lifecycle.external_hand_over(external_id=access.pk, actor=people.erin,
                                     new_sponsor=people.charlie, info=WEB)  # fmt: skip
    lifecycle.external_hand_over(external_id=access.pk, actor=people.erin,
                                 new_sponsor=people.bob, info=WEB)  # fmt: skip
    access.refresh_from_db()
    assert access.sponsor == people.bob and access.suspended_at is None and access.user.is_active
    assert can_request(access.user, opened["test-db"])


def test_a_sponsor_who_leaves_ends_their_externals_grants_at_the_source(
    opened, people, step_up, pg_target, django_capture_on_commit_callbacks
):
    access, _ = invite_zoe(people, step_up)
    grant, credential = holding_test_db(access, people, step_up, pg_target)
    with django_capture_on_commit_callbacks(execute=True):
        people.alice.is_active = False
        people.alice.save()
    # At once: nobody holds what their sponsor may no longer ask for.
    grant.refresh_from_db()
    assert grant.status == "revoking"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert not credential_works(credential, pg_target, None)
    # Then beat suspends the account itself until someone takes the sponsorship over.
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.externals_tick()["suspended"] == 1
    access.user.refresh_from_db()
    assert not access.user.is_active
    suspended = AuditEvent.objects.get(action="external.suspended")
    assert suspended.data["sponsor"] == "alice"


def test_the_contract_can_go_on_and_an_access_can_end_early(opened, people, step_up):
    access, _ = invite_zoe(people, step_up, days=10)
    lifecycle.externals_tick(now=access.contract_ends_at - timedelta(days=5))
    longer = timezone.now() + timedelta(days=90)
    lifecycle.external_contract_change(external_id=access.pk, actor=people.alice,
                                       contract_ends_at=longer, info=WEB)  # fmt: skip
    access.refresh_from_db()
    assert access.contract_ends_at == longer and access.reminded_days is None
    with pytest.raises(lifecycle.NotFound):  # bob is not their sponsor
        lifecycle.external_end(external_id=access.pk, actor=people.bob, reason="x", info=WEB)
    lifecycle.external_end(external_id=access.pk, actor=people.alice, reason="project over",
                           info=WEB)  # fmt: skip
    access.user.refresh_from_db()
    assert not access.user.is_active


def test_an_external_first_enrols_mfa_and_never_uses_api_tokens(client, opened, people, step_up,
                                                                 api):  # fmt: skip
    zoe = invite_zoe(people, step_up)[0].user
    client.force_login(zoe)
    assert client.get("/")["Location"] == "/mfa/enrol/"
    assert client.get("/requests/new/")["Location"] == "/mfa/enrol/"
    assert client.get("/mfa/enrol/").status_code == 200
    assert client.get("/tokens/").status_code == 403
    step_up(zoe)  # now with an authenticator
    assert client.get("/").status_code == 200
    assert client.get("/tokens/").status_code == 403
    assert client.get("/slack/link/").status_code == 403
    from accounts.tokens import token_create

    _, plaintext = token_create(user=zoe, name="sneaky", days=1, info=WEB)
    refused = client.get("/api/v1/requests/", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert refused.status_code == 401


def test_external_shows_wherever_the_person_is_shown(client, opened, people, step_up, api):
    from broker.access_report import report_rows
    from integrations.slack.blocks import request_message

    zoe = invite_zoe(people, step_up)[0].user
    asked = ask(zoe)
    client.force_login(people.alice)
    assert "zoe (external, Acme) asks for" in client.get(f"/requests/{asked.pk}/").content.decode()
    assert "zoe (external, Acme)" in client.get("/approvals/").content.decode()
    text, _ = request_message(asked)
    assert text.startswith("zoe (external, Acme) asks for test-db")
    body = api(people.bob).get(f"/api/v1/requests/{asked.pk}/").json()
    assert body["requester_external"] == "Acme"
    for approver in (people.alice, people.bob):
        step_up(approver)
        lifecycle.access_request_approve(request_id=asked.pk, approver=approver, info=WEB)
    lifecycle.grant_activate(grant_id=Grant.objects.get(request=asked).pk)
    (row,) = [r for r in report_rows(None, None) if r["requester"] == "zoe"]
    assert row["requester_external"] == "Acme"


def test_no_break_glass_and_optionally_business_hours_only(opened, people, step_up):
    from broker.models import CatalogState

    zoe = invite_zoe(people, step_up)[0].user
    with pytest.raises(lifecycle.NotAllowed, match="break-glass"):
        ask(zoe, break_glass=True)
    CatalogState.objects.update(
        externals={"max_duration": "30m", "business_hours_only": True},
        risk={"business_hours": {"start": 9, "end": 17, "days": []}},  # never open
    )
    with pytest.raises(lifecycle.NotAllowed, match="business hours only"):
        ask(zoe)
    assert not AccessRequest.objects.exists()


def test_a_third_party_never_approves_reviews_or_audits_whatever_their_groups(
    opened, people, step_up, submit
):
    from broker.policy.approvers import can_approve
    from broker.policy.locks import is_security
    from broker.selectors.requests import is_auditor

    zoe = invite_zoe(people, step_up)[0].user
    for group in ("sre", "security", "auditors"):
        Group.objects.get(name=group).user_set.add(zoe)
    zoe = get_user_model().objects.get(pk=zoe.pk)
    assert not can_approve(zoe, opened["test-db"])
    assert not is_security(zoe) and not is_auditor(zoe)
    asked = submit(people.alice)
    assert decision_refusal(zoe, asked) is not None


def test_slack_never_links_a_third_party_even_by_a_confirmed_email(client, opened, people,
                                                                   step_up, slack):  # fmt: skip
    from integrations.slack.models import SlackIdentity
    from tests.support.slack_requests import command

    invite_zoe(people, step_up)
    slack.add_user("U_ZOE", "zoe@acme.example")
    answer = command(client, "U_ZOE", "test-db 30m vendor work")
    assert answer.status_code == 200 and "Asked for" not in answer.content.decode()
    assert not AccessRequest.objects.exists()
    assert not SlackIdentity.objects.filter(user__username="zoe").exists()


def test_hand_over_resumes_only_a_suspension_not_a_disabled_account(opened, people, step_up):
    access, _ = invite_zoe(people, step_up)
    access.user.is_active = False  # disabled by an admin: a suspected compromise
    access.user.save()
    Group.objects.get(name="engineers").user_set.add(people.bob)
    lifecycle.external_hand_over(external_id=access.pk, actor=people.alice,
                                 new_sponsor=people.bob, info=WEB)  # fmt: skip
    access.user.refresh_from_db()
    assert not access.user.is_active


def test_a_sponsor_who_loses_the_profile_takes_it_from_their_third_party(
    opened, people, step_up, django_capture_on_commit_callbacks
):
    access, _ = invite_zoe(people, step_up)
    pending = ask(access.user)
    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name="engineers").user_set.remove(people.alice)
    zoe = get_user_model().objects.get(pk=access.user_id)
    assert not can_request(zoe, opened["test-db"])
    assert AccessRequest.objects.get(pk=pending.pk).status == "cancelled"


def test_third_parties_are_in_access_reviews_and_a_removal_holds_for_them(opened, people, step_up):
    zoe = invite_zoe(people, step_up)[0].user
    review = lifecycle.access_review_start(
        name="Q4", profile=opened["test-db"], takes=timedelta(days=7), actor=people.carol, info=WEB
    )
    assert set(review.items.values_list("person__username", flat=True)) == {"alice", "zoe"}
    step_up(people.bob)
    lifecycle.access_review_decide(
        item_id=review.items.get(person=zoe).pk, reviewer=people.bob, decision="remove",
        note="the project is over", info=WEB,
    )  # fmt: skip
    assert not can_request(get_user_model().objects.get(pk=zoe.pk), opened["test-db"])


def test_no_scheduled_start_and_no_shared_email_for_third_parties(opened, people, step_up):
    zoe = invite_zoe(people, step_up)[0].user
    with pytest.raises(lifecycle.InvalidRequest) as later:
        ask(zoe, start_at=timezone.now() + timedelta(days=1))
    assert "starts now" in later.value.fields["start_at"]
    step_up(people.alice)
    with pytest.raises(lifecycle.InvalidRequest) as shared:
        lifecycle.external_invite(
            sponsor=people.alice, username="zed", email="BOB@example.com", company="Acme",
            contract_ends_at=timezone.now() + timedelta(days=30),
            profiles=[opened["test-db"]], info=WEB,
        )  # fmt: skip
    assert shared.value.fields["email"] == "another account has this address"


def test_single_sign_on_never_finds_a_third_party_by_email(opened, people, step_up):
    from accounts.selectors import active_user_with_email

    invite_zoe(people, step_up)
    assert active_user_with_email("zoe@acme.example") is None
    assert active_user_with_email("alice@example.com") == people.alice


def test_a_sponsor_removed_by_a_review_ends_their_third_partys_grant_at_the_source(
    opened, people, step_up, pg_target, django_capture_on_commit_callbacks
):
    """Even where the catalog keeps live grants on a lost standing: a review's
    removal is a decision about this access, and nobody holds what their sponsor
    may no longer ask for."""
    from broker.models import CatalogState

    access, _ = invite_zoe(people, step_up)
    grant, credential = holding_test_db(access, people, step_up, pg_target)
    CatalogState.objects.update(on_eligibility_lost="keep")
    review = lifecycle.access_review_start(
        name="Q4", profile=opened["test-db"], takes=timedelta(days=7), actor=people.carol,
        info=WEB,
    )  # fmt: skip
    step_up(people.bob)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.access_review_decide(
            item_id=review.items.get(person=people.alice).pk, reviewer=people.bob,
            decision="remove", note="left the project", info=WEB,
        )  # fmt: skip
    grant.refresh_from_db()
    assert grant.status == "revoking"
    lifecycle.grant_revoke_execute(grant_id=grant.pk)  # the worker's part
    assert not credential_works(credential, pg_target, None)


def test_a_hand_over_never_re_enables_an_account_disabled_before_its_sponsor_left(
    opened, people, step_up
):
    access, _ = invite_zoe(people, step_up)
    access.user.is_active = False  # the admin: a suspected compromise
    access.user.save()
    people.alice.is_active = False  # then the sponsor leaves
    people.alice.save()
    assert lifecycle.externals_tick()["suspended"] == 0  # disabled already: not by this
    Group.objects.get(name="engineers").user_set.add(people.bob)
    step_up(people.erin)
    lifecycle.external_hand_over(external_id=access.pk, actor=people.erin,
                                 new_sponsor=people.bob, info=WEB)  # fmt: skip
    access.user.refresh_from_db()
    assert not access.user.is_active
