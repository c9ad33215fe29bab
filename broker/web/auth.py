"""Password sign-in (Django's ModelBackend) that knows third parties: one whose
access is over (the contract's end passed, suspended, ended) is not signed in,
even before beat disables the account, and a session of theirs is not restored."""

from django.contrib.auth.backends import ModelBackend

from broker.policy.externals import access_is_over, external_of

SIGN_IN_BACKEND = "broker.web.auth.PasswordBackend"


class PasswordBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        access = external_of(user)
        return access is None or not access_is_over(access)
