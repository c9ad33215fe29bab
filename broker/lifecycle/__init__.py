"""The only place where access requests and grants change state.

Every transition locks its row (or claims it with skip_locked), checks the old
state, writes the new state and its audit event in one transaction, and is
safe to call twice. Views, the API, Slack, admin actions and Celery tasks call
these functions and nothing else: `from broker import lifecycle`, then
`lifecycle.access_request_approve(...)`.
"""

from broker.lifecycle.catalog import CatalogDiff, catalog_sync
from broker.lifecycle.errors import (
    AlreadyShown,
    Conflict,
    InvalidRequest,
    LifecycleError,
    NotAllowed,
    NotFound,
    StepUpRequired,
    TryAgainLater,
)
from broker.lifecycle.extensions import grant_extend_execute, grant_extend_request
from broker.lifecycle.externals import (
    INVALID_INVITATION,
    external_accept,
    external_accept_through_partner,
    external_contract_change,
    external_end,
    external_hand_over,
    external_invite,
    externals_tick,
    sponsorable_profiles,
)
from broker.lifecycle.grants import (
    ACTIVATION_MAX_ATTEMPTS,
    grant_activate,
    grant_expire,
    grant_retry_revocation,
    grant_reveal,
    grant_revoke,
    grant_revoke_execute,
)
from broker.lifecycle.labels import request_label
from broker.lifecycle.locks import alerts_contain, lock_lift, lock_place, locks_end_expired
from broker.lifecycle.reminders import remind_pending, remind_reviews
from broker.lifecycle.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_deny,
    access_request_submit,
    access_requests_expire_pending,
    approvers_notified,
    break_glass_review_close,
)
from broker.lifecycle.reviews import (
    access_review_close,
    access_review_decide,
    access_review_start,
    access_reviews_tick,
    review_removal_lift,
)
from broker.lifecycle.standing import StandingChange, access_enforce_standing
from broker.lifecycle.sweeper import grants_expire, sweep

__all__ = [
    "ACTIVATION_MAX_ATTEMPTS",
    "INVALID_INVITATION",
    "AlreadyShown",
    "CatalogDiff",
    "Conflict",
    "InvalidRequest",
    "LifecycleError",
    "NotAllowed",
    "NotFound",
    "StandingChange",
    "StepUpRequired",
    "TryAgainLater",
    "access_enforce_standing",
    "access_request_approve",
    "access_request_cancel",
    "access_request_deny",
    "access_request_submit",
    "access_requests_expire_pending",
    "access_review_close",
    "access_review_decide",
    "access_review_start",
    "access_reviews_tick",
    "alerts_contain",
    "approvers_notified",
    "break_glass_review_close",
    "catalog_sync",
    "external_accept",
    "external_accept_through_partner",
    "external_contract_change",
    "external_end",
    "external_hand_over",
    "external_invite",
    "externals_tick",
    "grant_activate",
    "grant_expire",
    "grant_extend_execute",
    "grant_extend_request",
    "grant_retry_revocation",
    "grant_reveal",
    "grant_revoke",
    "grant_revoke_execute",
    "grants_expire",
    "lock_lift",
    "lock_place",
    "locks_end_expired",
    "remind_pending",
    "remind_reviews",
    "request_label",
    "review_removal_lift",
    "sponsorable_profiles",
    "sweep",
]
