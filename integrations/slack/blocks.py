"""Block Kit for requests, modals and App Home.

What people type (reasons, tickets, comments) is only ever shown in plain_text
objects: Slack renders those literally, so typed text can never mention
@channel, forge a link, or pass for Airlock's own formatting or status. Airlock's
own sentences are mrkdwn, and the account names and catalog titles in them are
escaped."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit.actions import Action
from audit.models import AuditEvent
from broker.models import AccessProfile, AccessRequest, Approval, Grant
from broker.policy.extensions import extension_limit
from broker.policy.externals import person_label
from broker.selectors.queue import recent_history, risk_hints
from lib.durations import format_duration
from lib.providers import get_provider

MAX_TEXT = 3000  # Slack refuses a section's text over 3000 characters
MAX_FIELD = 2000  # and a field's over 2000


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: with these three replaced, <!channel>, <@U1> and
    <http://x|y> cannot be forged. For names in Airlock's own sentences; what
    people type goes in typed() instead."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str, limit: int = MAX_TEXT) -> dict:
    """Airlock's words, formatted. A cut never ends in half an entity (`&lt;&g`):
    it backs up to the `&` that starts one."""
    if len(text) > limit:
        cut = text[: limit - 1]
        entity = cut.rfind("&")
        if entity != -1 and ";" not in cut[entity:]:
            cut = cut[:entity]
        text = cut + "…"
    return {"type": "mrkdwn", "text": text}


def typed(text: str, limit: int = MAX_FIELD) -> dict:
    """What someone typed, shown as typed: plain_text is never parsed for mentions,
    links or formatting, `emoji: false` keeps `:skull:` as text, and every run of
    whitespace (newlines too) becomes one space, so it cannot fake another line of
    the message. Cut before it is sent, so nothing needs escaping."""
    flat = " ".join((text or "").split()) or "-"
    return {"type": "plain_text", "text": _clip(flat, limit), "emoji": False}


def web_url(name: str, **kwargs) -> str:
    return f"{settings.AIRLOCK_BASE_URL}{reverse(name, kwargs=kwargs)}"


def _section(text: str) -> dict:
    return {"type": "section", "text": mrkdwn(text)}


def _said(*pairs: tuple[str, str], limit: int = MAX_FIELD) -> dict:
    """Typed text under Airlock's labels, side by side: "*Reason*" | what was typed."""
    fields: list[dict] = []
    for label, text in pairs:
        fields += [mrkdwn(f"*{label}*"), typed(text, limit)]
    return {"type": "section", "fields": fields}


def with_said(text: str, *pairs: tuple[str, str]) -> dict:
    """A message: Airlock's sentence (also the notification's text), then what
    someone typed, if anything. The arguments of chat.postMessage and ack()."""
    if not pairs:
        return {"text": text}
    return {"text": text, "blocks": [_section(text), _said(*pairs)]}


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [mrkdwn(text)]}


def _button(text: str, action_id: str, value: str = "", style: str = "", url: str = "") -> dict:
    button: dict = {"type": "button", "text": {"type": "plain_text", "text": text},
                    "action_id": action_id}  # fmt: skip
    if value:
        button["value"] = value
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _utc(moment) -> str:
    return (
        f"{moment:%H:%M} UTC"
        if moment.date() == timezone.now().date()
        else (f"{moment:%Y-%m-%d %H:%M} UTC")
    )


def status_line(access_request: AccessRequest) -> str:
    """Where the request stands now, in one line ("Approved by bob (MFA) 1/2").
    Why it was denied or revoked is typed text: see status_note."""
    decisions = list(access_request.decisions.select_related("approver").order_by("created_at"))
    approvals = [d for d in decisions if d.decision == Approval.Decision.APPROVE]
    needed = access_request.approvals_required
    approved_by = ", ".join(f"{escape(d.approver.get_username())} (MFA)" for d in approvals)
    status = access_request.status
    if status == AccessRequest.Status.PENDING:
        if approvals:
            return f":hourglass: Approved by {approved_by} {len(approvals)}/{needed}"
        return f":hourglass: Waiting for approval 0/{needed}"
    if status == AccessRequest.Status.DENIED:
        denier = next((d for d in decisions if d.decision == Approval.Decision.DENY), None)
        who = escape(denier.approver.get_username()) if denier else "an approver"
        return f":no_entry: Denied by {who}"
    if status == AccessRequest.Status.CANCELLED:
        if withdrawn(access_request):
            return ":heavy_multiplication_x: Withdrawn by Airlock"
        return ":heavy_multiplication_x: Cancelled by the requester"
    if status == AccessRequest.Status.EXPIRED:
        return ":zzz: Expired without a decision"
    prefix = f"Approved by {approved_by or 'the policy'} {len(approvals)}/{needed}"
    if access_request.extends_id:
        extended = access_request.extends
        return f":white_check_mark: {prefix}; the grant now ends {_utc(extended.expires_at)}"
    grant = Grant.objects.filter(request=access_request).first()
    if grant is None or grant.status == Grant.Status.SCHEDULED:
        return f":white_check_mark: {prefix}; starting"
    if grant.status == Grant.Status.ACTIVE:
        return f":large_green_circle: Active until {_utc(grant.expires_at)} ({prefix})"
    if grant.status in (Grant.Status.REVOKING, Grant.Status.REVOKED):
        if grant.end_reason == "expired":
            return ":checkered_flag: Expired"
        return f":stop_sign: {revocation(grant)[0]}"
    if grant.status == Grant.Status.FAILED:
        return ":warning: Could not be activated; see the web page"
    return ":rotating_light: Revocation failing; operators are on it"


def withdrawn(access_request: AccessRequest) -> bool:
    """Cancelled by Airlock because the requester lost standing, not by the requester."""
    if access_request.status != AccessRequest.Status.CANCELLED:
        return False
    return AuditEvent.objects.filter(
        action=Action.REQUEST_WITHDRAWN,
        target_type="accessrequest",
        target_id=str(access_request.pk),
    ).exists()


def status_note(access_request: AccessRequest) -> str:
    """What the approver who denied, or the person who revoked, typed as the reason."""
    if access_request.status == AccessRequest.Status.DENIED or withdrawn(access_request):
        return access_request.decision_reason
    grant = Grant.objects.filter(request=access_request).first()
    revoked = grant is not None and grant.status in (Grant.Status.REVOKING, Grant.Status.REVOKED)
    return revocation(grant)[1] if revoked and grant.end_reason != "expired" else ""


def _status(access_request: AccessRequest) -> list:
    note = status_note(access_request)
    return [_section(status_line(access_request)), *([_said(("Why", note))] if note else [])]


def revocation(grant: Grant) -> tuple[str, str]:
    """Who revoked the grant ("Revoked by alice"), and the reason they typed when it
    says more than that ("" if not)."""
    asked = (
        AuditEvent.objects.filter(
            target_type="grant", target_id=str(grant.pk), action=Action.GRANT_REVOKE_REQUESTED
        )
        .exclude(actor="")
        .order_by("-seq")
        .first()
    )
    who = asked.actor if asked else "Airlock"
    reason = grant.end_reason
    said = "" if not reason or reason == f"revoked by {who}" else reason
    return f"Revoked by {escape(who)}", said


def request_message(access_request: AccessRequest, *, buttons: bool = True) -> tuple[str, list]:
    """The message approvers see: who, what, how long, why, the ticket, history."""
    profile = access_request.profile
    who = person_label(access_request.requester)
    text = f"{escape(who)} asks for {profile.slug} for {format_duration(access_request.duration)}"
    blocks = [*request_summary(access_request), *_status(access_request)]
    actions = [
        _button("Open in Airlock", "open_web",
                url=web_url("request-detail", request_id=access_request.pk)),
    ]  # fmt: skip
    value = str(access_request.pk)
    if buttons and access_request.status == AccessRequest.Status.PENDING:
        actions = [
            _button("Approve", "approve", value, "primary"),
            _button("Deny", "deny", value, "danger"),
            *actions,
        ]
    if buttons:
        # Approvers' word for the model of usual access, before or after deciding.
        actions += [
            _button("This was unusual", "label_unusual", value),
            _button("This was normal", "label_normal", value),
        ]
    blocks.append({"type": "actions", "block_id": "decide", "elements": actions})
    return text, blocks


def request_summary(access_request: AccessRequest) -> list:
    """Who asks for what, for how long and why, then the risk and their history."""
    profile = access_request.profile
    who = person_label(access_request.requester)
    more = " more on a live grant" if access_request.extends_id else ""
    headline = (
        f"*{escape(who)}* asks for *{escape(profile.title)}* (`{profile.slug}`) "
        f"for *{format_duration(access_request.duration)}*{more}"
    )
    said = [("Reason", access_request.reason or "none given")]
    if access_request.ticket:
        said.append(("Ticket", access_request.ticket))
    earlier = recent_history([access_request])[access_request.requester_id, profile.pk]
    history = "; ".join(
        f"{format_duration(past.duration)} {past.status} {past.created_at:%Y-%m-%d}"
        for past in earlier
    )
    facts = [
        *risk_hints(access_request),
        f"recent: {history}" if history else "no earlier requests",
    ]
    return [_section(headline), _said(*said), _context(escape(" · ".join(facts)))]


def _input(block_id: str, label: str, element: dict, *, optional=False, hint="") -> dict:
    block = {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label},
             "element": {**element, "action_id": "value"}, "optional": optional}  # fmt: skip
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint[:150]}
    return block


def _text_input(placeholder: str = "", multiline: bool = False, max_length: int = 2000) -> dict:
    element = {"type": "plain_text_input", "multiline": multiline, "max_length": max_length}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder}
    return element


def _modal(callback_id: str, title: str, submit: str, blocks: list, metadata: str = "") -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": blocks,
    }


def request_modal(profiles: list[AccessProfile]) -> dict:
    options = [
        {
            "text": {"type": "plain_text", "text": f"{p.slug}: {p.title}"[:75]},
            "value": p.slug,
            "description": {
                "type": "plain_text",
                "text": f"up to {format_duration(p.definition.max_duration)}"
                + ("; ticket required" if p.definition.ticket_required else "")
                + ("; SSH key" if get_provider(p.provider_kind).needs_public_key else ""),
            },
        }
        for p in profiles[:100]
    ]
    blocks = [
        _input("profile", "Access profile", {"type": "static_select", "options": options}),
        _input("duration", "For how long", _text_input("1h", max_length=20),
               hint="e.g. 30m, 1h30m; at most the profile's maximum"),
        _input("reason", "Reason", _text_input("What are you fixing?", multiline=True),
               optional=True),
        _input("ticket", "Ticket", _text_input("INC-123", max_length=100), optional=True),
        _input("ssh_public_key", "SSH public key (SSH profiles only)",
               _text_input("ssh-ed25519 AAAA...", multiline=True, max_length=3000),
               optional=True),
    ]  # fmt: skip
    return _modal("request_modal", "Request access", "Request", blocks)


def otp_input() -> dict:
    return _input("otp", "Code from your authenticator app",
                  _text_input("123456", max_length=16),
                  hint="Or one of your backup codes.")  # fmt: skip


def approve_modal(access_request: AccessRequest, *, needs_otp: bool) -> dict:
    summary = request_summary(access_request)
    last_step = _context("You passed MFA in the last few minutes; confirm to approve.")
    comment = _input("comment", "Comment", _text_input(multiline=True), optional=True)
    blocks = [*summary, comment, otp_input() if needs_otp else last_step]
    return _modal("approve_modal", "Approve with MFA", "Approve", blocks, str(access_request.pk))


def deny_modal(access_request: AccessRequest, *, needs_otp: bool) -> dict:
    blocks = [
        *request_summary(access_request),
        _input("reason", "Why not? (the requester sees this)", _text_input(multiline=True)),
    ]
    if needs_otp:
        blocks.append(otp_input())
    return _modal("deny_modal", "Deny the request", "Deny", blocks, str(access_request.pk))


def lock_modal(locked_user, reason: str, *, needs_otp: bool) -> dict:
    """Confirm a lock on the Airlock user the command named, shown as Airlock knows them."""
    who = escape(f"{locked_user.get_username()} ({locked_user.email or 'no email'})")
    summary = _section(
        f"Lock *{who}*: every live grant of theirs is revoked at the source, their pending "
        "requests are withdrawn, and they can ask for, approve and see nothing until two "
        "people of the security role lift the lock."
    )
    reason_input = _input("reason", "Why", _text_input(multiline=True))
    reason_input["element"]["initial_value"] = reason[:2000]
    duration = _input(
        "duration",
        "For how long",
        _text_input("e.g. 4h", max_length=20),
        optional=True,
        hint="Empty: until lifted.",
    )
    blocks = [summary, reason_input, duration]
    if needs_otp:
        blocks.append(otp_input())
    return _modal("lock_modal", "Lock a user", "Lock now", blocks, str(locked_user.pk))


def expiry_warning(grant: Grant, text: str) -> list:
    """The warning, with an Extend button when the profile allows one more."""
    limit = extension_limit(grant)
    message = [_section(text)]
    if limit is not None and limit.offered(grant):
        message.append(
            {"type": "actions", "elements": [_button("Extend", "extend", str(grant.pk))]}
        )
    return message


def extend_modal(grant: Grant) -> dict:
    room = format_duration(extension_limit(grant).room(grant))
    blocks = [
        _input("duration", "How much more", _text_input("30m", max_length=20),
               hint=f"at most {room} more"),
        _input("reason", "Why", _text_input(multiline=True), optional=True),
    ]  # fmt: skip
    return _modal("extend_modal", "Extend access", "Ask", blocks, str(grant.pk))


def home_view(user, *, grants, pending, awaiting) -> dict:
    blocks: list[dict] = [_header("Your access")]
    if not grants:
        blocks.append(_context("No active grants. Type `/access` to ask for some."))
    for grant in grants:
        left = ""
        if grant.status == Grant.Status.ACTIVE:
            minutes = max(0, int((grant.expires_at - timezone.now()).total_seconds() // 60))
            left = f", {minutes} min left (until {_utc(grant.expires_at)})"
        blocks.append({
            **_section(f"*{grant.request.profile.slug}*: {grant.status}{left}"),
            "accessory": _button("Relinquish", "relinquish", str(grant.pk), "danger"),
        })  # fmt: skip
    blocks.append(_header("Pending requests"))
    if not pending:
        blocks.append(_context("Nothing waiting."))
    for r in pending:
        blocks.append(_section(f"*{r.profile.slug}* for {format_duration(r.duration)}: "
                               f"{status_line(r)}"))  # fmt: skip
    if awaiting is not None:
        blocks.append(_header("Waiting for your decision"))
        if not awaiting:
            blocks.append(_context("Nothing to decide."))
        for r in awaiting:
            who = escape(person_label(r.requester))
            blocks.append(_section(f"*{who}* asks for *{r.profile.slug}* for "
                                   f"{format_duration(r.duration)}"))  # fmt: skip
            blocks.append(_said(("Reason", r.reason or "none given"), limit=200))
            blocks.append({"type": "actions", "elements": [
                _button("Approve", "approve", str(r.pk), "primary"),
                _button("Deny", "deny", str(r.pk), "danger"),
            ]})  # fmt: skip
    return {"type": "home", "blocks": blocks[:100]}
