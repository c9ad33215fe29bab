"""What happens when someone uses Airlock in Slack. Listeners are thin: they find
who is asking, call the lifecycle, and answer; messages are updated by the
notifier after the change commits."""

import json
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError

from accounts.selectors import recent_step_up
from accounts.services import MfaError, has_mfa, mfa_step_up
from audit import trail
from broker import lifecycle
from broker.models import AccessProfile, AccessRequest, Grant
from broker.policy.approvers import decision_refusal
from broker.policy.extensions import extension_limit
from broker.policy.locks import is_security
from broker.policy.requesters import can_request, requestable_profiles
from broker.selectors.queue import approval_queue
from broker.selectors.requests import can_view_request, live_grants_of
from integrations.slack import blocks
from integrations.slack.linking import (
    info_for,
    linked_user,
    slack_link_by_code,
    slack_link_by_email,
)
from integrations.slack.workspaces import serves
from lib.durations import format_duration, parse_duration
from lib.providers import get_provider

HELP = (
    "*/access* opens the request form. Or in one line: "
    "`/access PROFILE DURATION REASON` (e.g. `/access prod-db 1h fixing INC-123`).\n"
    "`/access status` lists your pending requests and grants; "
    "`/access revoke GRANT` gives access back; `/access link CODE` links this Slack "
    "account with the code from Airlock's web page.\n"
    "Security role: `/access lock @user REASON` locks someone at once (asks for MFA)."
)
MENTION = re.compile(r"^<@([A-Z0-9_]+)(?:\|[^>]*)?>$")
TICKET = re.compile(r"^[A-Z][A-Z0-9]+-[0-9]+$")


def unknown_user_text() -> str:
    return (
        "I don't know who you are in Airlock yet, so I can't do anything for you. Link your "
        f"Slack account on <{blocks.web_url('slack-link')}|your Airlock profile page> "
        "(or ask an admin to set the same email in both)."
    )


def identify(client, team_id: str, slack_user_id: str):
    """The linked Airlock user; on first contact, link by the email Slack vouches for,
    if Slack places the user in a workspace Airlock serves (an event such as App Home
    does not say where its user is from; users.info does)."""
    user = linked_user(team_id, slack_user_id)
    if user is not None:
        return user
    try:
        found = client.users_info(user=slack_user_id)["user"]
    except SlackApiError:
        return None
    if found.get("deleted") or found.get("is_bot") or not found.get("is_email_confirmed"):
        return None
    if not serves(found.get("team_id")):
        return None
    return slack_link_by_email(
        team_id=team_id, slack_user_id=slack_user_id, email=found.get("profile", {}).get("email")
    )


def tell(client, body: dict, text: str) -> None:
    """An answer only the clicking user sees: ephemeral in a channel, else a DM."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id")
    if channel:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    else:
        client.chat_postMessage(channel=user, text=text)


def _team(body: dict) -> str:
    return body.get("team_id") or (body.get("team") or {}).get("id") or ""


def _find(queryset, value: str):
    """The object a button names, or None (also for a value that is not a UUID)."""
    try:
        return queryset.filter(pk=value).first()
    except ValidationError:
        return None


# --- /access ------------------------------------------------------------------


def access_command(ack, body, command, client):
    team, slack_user = command.get("team_id", ""), command.get("user_id", "")
    text = (command.get("text") or "").strip()
    words = text.split()
    user = identify(client, team, slack_user)
    if words[:1] == ["link"]:
        if len(words) != 2:
            return ack("Use `/access link CODE` with the code from Airlock's web page.")
        if user is not None:
            return ack(f"This Slack account is already linked to {user.get_username()}.")
        linked = slack_link_by_code(team_id=team, slack_user_id=slack_user, code=words[1])
        if linked is None:
            return ack("That code is not valid (they last 10 minutes and work once).")
        return ack(f"Linked: in Airlock you are {linked.get_username()}.")
    if user is None:
        return ack(unknown_user_text())
    if words[:1] == ["help"]:
        return ack(HELP)
    if words[:1] == ["status"]:
        return ack(status_text(user))
    if words[:1] == ["lock"]:
        return lock_command(ack, body, client, user, team, words[1:])
    if words[:1] == ["revoke"]:
        if len(words) != 2:
            return ack("Use `/access revoke GRANT` (see `/access status` for ids).")
        refused = revoke(user, words[1], "", info_for(team, slack_user))
        if refused:
            return ack(f"Not revoked: {refused}.")
        return ack("Revoking; the credential stops working in a moment.")
    if not words:
        profiles = requestable_profiles(user)
        if not profiles:
            return ack("There is no profile you may request.")
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=blocks.request_modal(profiles))
        return None
    return ack(**submit_from_text(user, words, info_for(team, slack_user)))


def lock_command(ack, body, client, user, team: str, words: list[str]):
    """`/access lock @user REASON`: a confirmation modal naming the Airlock user."""
    if len(words) < 2:
        return ack("Use `/access lock @user REASON`.")
    if not is_security(user):
        return ack("Only the security role (the catalog's `security:`) may lock.")
    if not has_mfa(user):
        page = blocks.web_url("mfa-enrol")
        return ack(f"Locking needs MFA: set up an authenticator app on <{page}|Airlock> first.")
    target = _lock_target(team, words[0])
    if target is None:
        said = blocks.with_said(
            "No Airlock user by that name or Slack link.", ("You typed", words[0])
        )
        return ack(**said)
    ack()
    view = blocks.lock_modal(target, " ".join(words[1:]), needs_otp=recent_step_up(user) is None)
    client.views_open(trigger_id=body["trigger_id"], view=view)
    return None


def _lock_target(team: str, word: str):
    """A Slack mention (<@U…>, mapped by its identity link, never by display name)
    or an Airlock username (with or without @)."""
    if mention := MENTION.match(word):
        return linked_user(team, mention.group(1))
    return get_user_model().objects.filter(username=word.removeprefix("@")).first()


def status_text(user) -> str:
    pending = AccessRequest.objects.filter(
        requester=user, status=AccessRequest.Status.PENDING
    ).select_related("profile")
    lines = [
        f"• pending: *{r.profile.slug}* for {format_duration(r.duration)} ({r.pk})" for r in pending
    ]
    for grant in live_grants_of(user):
        until = f" until {grant.expires_at:%H:%M} UTC" if grant.expires_at else ""
        lines.append(f"• {grant.status}: *{grant.request.profile.slug}*{until} (`{grant.pk}`)")
    return "\n".join(lines) or "No pending requests and no active grants."


def submit_from_text(user, words: list[str], info: trail.RequestInfo) -> dict:
    """`/access PROFILE DURATION REASON...`: submit at once if nothing is missing.
    The answer, as ack()'s arguments: what the user typed is only ever quoted
    (blocks.with_said), never part of the mrkdwn."""
    profile = AccessProfile.objects.filter(slug=words[0], enabled=True).first()
    if profile is None or not can_request(user, profile):
        return blocks.with_said(f"There is no such profile you may request. {HELP}",
                                ("You typed", words[0]))  # fmt: skip
    if len(words) < 2:
        return {"text": f"How long? e.g. `/access {profile.slug} 1h your reason`."}
    try:
        duration = parse_duration(words[1])
    except ValueError as exc:
        return blocks.with_said("Not submitted: that is not a duration.", ("Why", str(exc)))
    reason = " ".join(words[2:])
    pattern = (
        re.compile(profile.definition.ticket_pattern)
        if profile.definition.ticket_pattern
        else TICKET
    )
    ticket = next((w.strip(".,;:()") for w in words[2:] if pattern.fullmatch(w.strip(".,;:()"))),
                  "")  # fmt: skip
    if get_provider(profile.provider_kind).needs_public_key:
        return {"text": "SSH profiles need your public key: type `/access` and use the form."}
    try:
        access_request = lifecycle.access_request_submit(
            requester=user, profile=profile, duration=duration, reason=reason, ticket=ticket,
            info=info,
        )  # fmt: skip
    except lifecycle.LifecycleError as exc:
        details = "; ".join(f"{field}: {text}" for field, text in exc.fields.items())
        return blocks.with_said("Not submitted.", ("Why", details or exc.message))
    return {
        "text": f"Asked for *{profile.slug}* for {format_duration(duration)}; approvers have "
        f"been notified (request `{access_request.pk}`)."
    }


def request_submission(ack, body, view, client):
    team, slack_user = _team(body), body["user"]["id"]
    user = identify(client, team, slack_user)
    if user is None:
        return ack(response_action="errors", errors={"profile": "You are not linked to Airlock."})
    values = {block: _value(view, block) for block in view["state"]["values"]}
    profile = AccessProfile.objects.filter(slug=values.get("profile", ""), enabled=True).first()
    if profile is None:
        return ack(response_action="errors", errors={"profile": "Choose a profile."})
    try:
        duration = parse_duration(values.get("duration", "").strip())
    except ValueError as exc:
        return ack(response_action="errors", errors={"duration": str(exc)})
    try:
        lifecycle.access_request_submit(
            requester=user,
            profile=profile,
            duration=duration,
            reason=values.get("reason", ""),
            ticket=values.get("ticket", ""),
            ssh_public_key=values.get("ssh_public_key", ""),
            info=info_for(team, slack_user),
        )
    except lifecycle.LifecycleError as exc:
        errors = {f: m for f, m in exc.fields.items() if f in values} or {"profile": exc.message}
        return ack(response_action="errors", errors=errors)
    return ack()


# --- approve and deny ---------------------------------------------------------


def _clicker(body, client) -> tuple[object, trail.RequestInfo] | None:
    """The linked Airlock user who clicked, and the click's audit info; None after
    telling an unlinked Slack user so."""
    team, slack_user = _team(body), body["user"]["id"]
    user = identify(client, team, slack_user)
    if user is None:
        tell(client, body, unknown_user_text())
        return None
    return user, info_for(team, slack_user)


def _decider(body, client) -> tuple[object, AccessRequest] | None:
    """The clicking approver and the request, or None after telling them why not."""
    clicked = _clicker(body, client)
    if clicked is None:
        return None
    user = clicked[0]
    access_request = _find(
        # The requester's external access with them: the policy asks for a sponsor.
        AccessRequest.objects.select_related("profile", "requester__external_access"),
        body["actions"][0].get("value", ""),
    )
    if access_request is None:
        tell(client, body, "That request does not exist.")
        return None
    refusal = decision_refusal(user, access_request)
    if refusal is not None:
        tell(client, body, f"{refusal.message[:1].upper()}{refusal.message[1:]}.")
        return None
    return user, access_request


def _mfa_enrolled(user, body, client, doing: str) -> bool:
    if has_mfa(user):
        return True
    page = blocks.web_url("mfa-enrol")
    tell(client, body, f"{doing} needs MFA: set up an authenticator app on <{page}|Airlock> first.")
    return False


def approve_clicked(ack, body, client):
    ack()
    found = _decider(body, client)
    if found is None:
        return
    user, access_request = found
    if not _mfa_enrolled(user, body, client, "Approving"):
        return
    view = blocks.approve_modal(access_request, needs_otp=recent_step_up(user) is None)
    client.views_open(trigger_id=body["trigger_id"], view=view)


def deny_clicked(ack, body, client):
    ack()
    found = _decider(body, client)
    if found is None:
        return
    user, access_request = found
    if not _mfa_enrolled(user, body, client, "Denying"):
        return
    view = blocks.deny_modal(access_request, needs_otp=recent_step_up(user) is None)
    client.views_open(trigger_id=body["trigger_id"], view=view)


def _value(view: dict, block: str) -> str:
    """A text input's value or a select's choice; "" for anything else."""
    field = view["state"]["values"].get(block)
    element = field.get("value") if isinstance(field, dict) else None
    if not isinstance(element, dict):
        return ""
    chosen = element.get("selected_option")
    value = chosen.get("value") if isinstance(chosen, dict) else element.get("value")
    return value if isinstance(value, str) else ""


def _submitted_with_step_up(ack, body, view, client, decide) -> None:
    """A modal that acts after MFA: verify the code (unless recent), then `decide`."""
    team, slack_user = _team(body), body["user"]["id"]
    user = identify(client, team, slack_user)
    # Errors must name an input block of the view; the code field if there is one.
    error_block = next(
        (b for b in ("otp", "comment", "reason") if b in view["state"]["values"]), "otp"
    )
    if user is None:
        return ack(response_action="errors", errors={error_block: "You are not linked to Airlock."})
    info = info_for(team, slack_user)
    code = _value(view, "otp").strip()
    if code or recent_step_up(user) is None:
        try:
            mfa_step_up(user=user, code=code, info=info)
        except MfaError as exc:
            return ack(response_action="errors", errors={error_block: str(exc)})
    try:
        decide(user, view["private_metadata"], info)
    except lifecycle.LifecycleError as exc:
        values = view["state"]["values"]
        errors = {field: text for field, text in exc.fields.items() if field in values}
        return ack(response_action="errors", errors=errors or {error_block: exc.message})
    return ack()


def approve_submitted(ack, body, view, client):
    def decide(user, request_id, info):
        lifecycle.access_request_approve(
            request_id=request_id, approver=user, comment=_value(view, "comment"), info=info
        )

    _submitted_with_step_up(ack, body, view, client, decide)


def deny_submitted(ack, body, view, client):
    def decide(user, request_id, info):
        lifecycle.access_request_deny(
            request_id=request_id, approver=user, reason=_value(view, "reason"), info=info
        )

    _submitted_with_step_up(ack, body, view, client, decide)


def lock_submitted(ack, body, view, client):
    def decide(user, locked_user_id, info):
        locked = get_user_model().objects.filter(pk=locked_user_id).first()
        text = _value(view, "duration").strip()
        try:
            duration = parse_duration(text) if text else None
        except ValueError as exc:
            raise lifecycle.InvalidRequest(str(exc), fields={"duration": str(exc)}) from None
        lifecycle.lock_place(
            actor=user,
            scope="user",
            subject=locked.get_username() if locked else "",
            reason=_value(view, "reason"),
            duration=duration,
            info=info,
        )

    _submitted_with_step_up(ack, body, view, client, decide)


# --- App Home -----------------------------------------------------------------


def publish_home(client, user, slack_user_id: str) -> None:
    grants = [g for g in live_grants_of(user) if g.status != Grant.Status.REVOKING]
    pending = list(
        AccessRequest.objects.filter(requester=user, status=AccessRequest.Status.PENDING)
        .select_related("profile")
        .order_by("created_at")[:20]
    )
    queue = list(approval_queue(user)[:20])
    view = blocks.home_view(user, grants=grants, pending=pending, awaiting=queue or None)
    client.views_publish(user_id=slack_user_id, view=view)


def home_opened(event, body, client):
    user = identify(client, _team(body), event["user"])
    if user is None:
        client.views_publish(
            user_id=event["user"],
            view={"type": "home", "blocks": [blocks._section(unknown_user_text())]},
        )
        return
    publish_home(client, user, event["user"])


def label_clicked(ack, body, client):
    """ "This was unusual" / "This was normal": the approver's word for the model."""
    ack()
    clicked = _clicker(body, client)
    if clicked is None:
        return
    user, info = clicked
    action = body["actions"][0]
    access_request = _find(AccessRequest.objects.all(), action.get("value", ""))
    if access_request is None or not can_view_request(user, access_request):
        tell(client, body, "That request does not exist.")
        return
    label = action.get("action_id", "").removeprefix("label_")
    try:
        lifecycle.request_label(
            request_id=access_request.pk,
            labeller=user,
            label=label,
            info=info,
        )
    except lifecycle.LifecycleError as exc:
        tell(client, body, f"Not marked: {exc}.")
        return
    tell(client, body, f"Marked {label}: the model learns from it.")


def relinquish_clicked(ack, body, client):
    ack()
    clicked = _clicker(body, client)
    if clicked is None:
        return
    user, info = clicked
    reason = f"relinquished by {user.get_username()}"
    refused = revoke(user, body["actions"][0].get("value", ""), reason, info)
    if refused:
        tell(client, body, f"Not revoked: {refused}.")
        return
    publish_home(client, user, body["user"]["id"])


def revoke(user, grant_id: str, reason: str, info: trail.RequestInfo) -> str | None:
    """Revoke a grant for a Slack user; why not, if not. Like the web and the API,
    someone who may not see the grant is told it does not exist."""
    grant = _find(Grant.objects.select_related("request__profile"), grant_id)
    if grant is None or not can_view_request(user, grant.request):
        return "no such grant"
    try:
        lifecycle.grant_revoke(grant_id=grant.pk, actor=user, reason=reason, info=info)
    except lifecycle.LifecycleError as exc:
        return exc.message
    return None


def extend_clicked(ack, body, client):
    ack()
    user = identify(client, _team(body), body["user"]["id"])
    grant = _find(
        Grant.objects.select_related("request__profile"), body["actions"][0].get("value", "")
    )
    if user is None or grant is None or grant.request.requester_id != user.pk:
        tell(client, body, "That grant is not yours, or it does not exist.")
        return
    limit = extension_limit(grant)
    if limit is None or not limit.offered(grant):
        tell(client, body, "This grant cannot be extended.")
        return
    client.views_open(trigger_id=body["trigger_id"], view=blocks.extend_modal(grant))


def extend_submitted(ack, body, view, client):
    team, slack_user = _team(body), body["user"]["id"]
    user = identify(client, team, slack_user)
    if user is None:
        return ack(response_action="errors", errors={"duration": "You are not linked to Airlock."})
    try:
        duration = parse_duration(_value(view, "duration").strip())
        lifecycle.grant_extend_request(
            grant_id=view["private_metadata"],
            actor=user,
            duration=duration,
            reason=_value(view, "reason"),
            info=info_for(team, slack_user),
        )
    except ValueError as exc:
        return ack(response_action="errors", errors={"duration": str(exc)})
    except lifecycle.LifecycleError as exc:
        message = "; ".join(exc.fields.values()) or exc.message
        return ack(response_action="errors", errors={"duration": message})
    return ack()


def link_clicked(ack):
    ack()  # a URL button: Slack opens the page, there is nothing to do here


def register(app: App) -> None:
    app.command(re.compile(r"^/access"))(access_command)
    app.view("request_modal")(request_submission)
    app.view("approve_modal")(approve_submitted)
    app.view("deny_modal")(deny_submitted)
    app.view("lock_modal")(lock_submitted)
    app.action("approve")(approve_clicked)
    app.action("deny")(deny_clicked)
    app.action("relinquish")(relinquish_clicked)
    app.action("label_unusual")(label_clicked)
    app.action("label_normal")(label_clicked)
    app.action("extend")(extend_clicked)
    app.view("extend_modal")(extend_submitted)
    app.action("open_web")(link_clicked)
    app.event("app_home_opened")(home_opened)


SLACK_UNREACHABLE = "Slack's Web API cannot be reached; try again in a moment"


def authorize(enterprise_id, team_id, user_id) -> AuthorizeResult:
    """The app's identity in a request, without asking Slack. Bolt's own asks
    auth.test on the first request, and while Slack could not be reached every
    request failed with a 500 before any listener ran. The bot token is Airlock's
    own, for the workspaces it serves (views.py refuses the others first)."""
    return AuthorizeResult(
        enterprise_id=enterprise_id,
        team_id=team_id,
        user_id=user_id,
        bot_token=settings.SLACK_BOT_TOKEN,
    )


def listener_failed(error: Exception, logger) -> BoltResponse | None:
    """Slack out of reach (refused, timed out: an OSError from the Web API client)
    is a 503 that says so, and the next request tries again; anything else stays
    Bolt's 500."""
    if isinstance(error, OSError):
        logger.warning("Slack's Web API cannot be reached: %s", error)
        return BoltResponse(
            status=503,
            body=json.dumps({"ok": False, "error": SLACK_UNREACHABLE}),
            headers={"content-type": "application/json"},
        )
    logger.error("A Slack listener failed", exc_info=error)
    return None


def build_app() -> App:
    """The Bolt app, from settings; building it asks nothing of Slack. Listeners
    run before the HTTP answer (process_before_response): they only touch the
    database and open modals, so they answer well within Slack's 3 seconds; slow
    work is in Celery."""
    from integrations.slack.client import slack_client

    app = App(
        signing_secret=settings.SLACK_SIGNING_SECRET,
        client=slack_client(),
        authorize=authorize,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    app.error(listener_failed)
    register(app)
    return app
