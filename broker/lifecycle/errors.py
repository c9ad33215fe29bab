"""What the lifecycle refuses with: each error says why, and whether a retry helps."""


class LifecycleError(Exception):
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidRequest(LifecycleError):
    code = "invalid"


class NotAllowed(LifecycleError):
    code = "forbidden"


class StepUpRequired(NotAllowed):
    code = "step_up_required"


class NotFound(LifecycleError):
    code = "not_found"


class Conflict(LifecycleError):
    """The object is not in a state that allows this (often: someone else won a race)."""

    code = "conflict"


class AlreadyShown(Conflict):
    """A credential is shown once: the way on is a new grant of `profile_slug`."""

    def __init__(self, message: str, *, profile_slug: str):
        super().__init__(message)
        self.profile_slug = profile_slug


class TryAgainLater(Exception):
    """A provider failed transiently (the attempt is recorded), or it is too early:
    the caller should retry, after `retry_in` seconds when that is known."""

    def __init__(self, message: str, retry_in: float | None = None):
        super().__init__(message)
        self.retry_in = retry_in
