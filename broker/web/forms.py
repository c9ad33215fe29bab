from django import forms
from django.contrib.auth.models import Group

from broker.models import AccessProfile
from broker.policy.requesters import unavailable_because
from lib.durations import format_duration, parse_duration
from lib.sshkeys import PRIVATE_KEY_PASTED, is_private_key


def optional_duration(text: str):
    """A duration field's text as a timedelta (empty: None), or the field's error."""
    try:
        return parse_duration(text.strip()) if text.strip() else None
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class RequestForm(forms.Form):
    profile = forms.ChoiceField(label="Access profile")
    duration = forms.CharField(
        label="For how long", max_length=20, help_text="e.g. 30m, 1h, 1h30m", required=False
    )
    reason = forms.CharField(label="Reason", widget=forms.Textarea, max_length=2000, required=False)
    ticket = forms.CharField(label="Ticket", max_length=100, required=False)
    ssh_public_key = forms.CharField(
        label="SSH public key",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=16000,
        required=False,
        help_text="Only for SSH profiles: the contents of your .pub file, e.g. ssh-ed25519 AAAA…",
    )

    start_at = forms.DateTimeField(
        label="Start at (UTC, optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="For a change window: approved now, the credential is minted at this time.",
    )
    break_glass = forms.BooleanField(
        label="Emergency: break-glass",
        required=False,
        help_text=(
            "Only on profiles that allow it: access at once without approval, capped, "
            "announced to security and all approvers, and reviewed afterwards. Asks for MFA."
        ),
    )

    def __init__(self, *args, profiles: list[AccessProfile], **kwargs):
        super().__init__(*args, **kwargs)
        self.profiles = {p.slug: p for p in profiles}
        self.fields["profile"].choices = [
            (
                p.slug,
                f"{p.title} (unavailable here)"
                if unavailable_because(p)
                else f"{p.title} (up to {format_duration(p.definition.max_duration)})",
            )
            for p in profiles
        ]
        self.private_key_pasted = self.is_bound and is_private_key(self.data.get("ssh_public_key"))
        if self.private_key_pasted:
            # Never send a secret back into the page: the form re-renders without it.
            self.data = self.data.copy()
            self.data["ssh_public_key"] = ""

    def clean_duration(self):
        return optional_duration(self.cleaned_data["duration"])

    def clean(self):
        if self.private_key_pasted:
            self.add_error("ssh_public_key", PRIVATE_KEY_PASTED)
        return super().clean()

    @property
    def selected_profile(self) -> AccessProfile:
        return self.profiles[self.cleaned_data["profile"]]


class LockForm(forms.Form):
    scope = forms.ChoiceField(
        label="Lock",
        choices=[("user", "a user"), ("profile", "a profile"), ("target", "a provider target")],
    )
    subject = forms.CharField(
        label="Which one",
        max_length=200,
        help_text="A username, a profile id, or a target from the list below.",
    )
    duration = forms.CharField(
        label="For how long (optional)",
        max_length=20,
        required=False,
        help_text="e.g. 2h or 3d; empty: until two of the security role lift it.",
    )
    reason = forms.CharField(
        label="Reason", widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )

    def clean_duration(self):
        return optional_duration(self.cleaned_data["duration"])


class AccessReviewForm(forms.Form):
    """Start an access review on demand: of a profile's requesters or a group."""

    name = forms.CharField(label="Name", max_length=100, help_text="e.g. Q4 payments-db-write")
    subject = forms.ChoiceField(label="Review")
    days = forms.IntegerField(label="Days to review", min_value=1, max_value=90, initial=14)
    unreviewed = forms.ChoiceField(
        label="Whoever is not reviewed by the deadline",
        choices=[("keep", "is kept, flagged as not reviewed"), ("remove", "is removed")],
    )
    reviewers = forms.ChoiceField(
        label="Reviewers",
        choices=[
            ("default", "the profile's approvers (for a group, the security role)"),
            ("managers", "each person's manager, else the profile's approvers"),
        ],
        initial="default",
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        profiles = [
            (f"profile:{slug}", f"who may ask for {slug}")
            for slug in AccessProfile.objects.filter(enabled=True).values_list("slug", flat=True)
        ]
        groups = [
            (f"group:{name}", f"who is in the group {name}")
            for name in Group.objects.order_by("name").values_list("name", flat=True)
        ]
        self.fields["subject"].choices = profiles + groups


class ExternalInviteForm(forms.Form):
    """A sponsor invites a third party: who, from which company, until when, for what."""

    username = forms.CharField(label="Their username", max_length=150)
    email = forms.EmailField(label="Their email (optional)", required=False)
    company = forms.CharField(label="Company", max_length=200)
    contract_ends = forms.DateField(
        label="Contract ends (UTC)", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Their account is disabled at the start of this day.",
    )  # fmt: skip
    profiles = forms.MultipleChoiceField(
        label="Profiles they may ask for", widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, sponsorable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["profiles"].choices = [(p.slug, f"{p.slug}: {p.title}") for p in sponsorable]


class ExternalInvitationForm(forms.Form):
    """The invitation's code: the link carries it after "#", which browsers never
    send (airlock.js posts it), so no proxy's access log holds it."""

    token = forms.CharField(
        label="Invitation code", max_length=200, help_text="the part of your link after #"
    )


class ExternalAcceptForm(forms.Form):
    password = forms.CharField(label="Choose a password", widget=forms.PasswordInput)
    again = forms.CharField(label="The password again", widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("again"):
            raise forms.ValidationError("the two passwords differ")
        return data
