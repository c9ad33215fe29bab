"""Every kind of audit event, by name. The values are what the trail stores and
exports (and what its hashes cover): never change one, add a new one instead."""

from enum import StrEnum


class Action(StrEnum):
    # anomaly detection
    ALERT_RAISED = "alert.raised"
    # access reviews (campaigns certifying who may ask for what)
    ACCESS_REVIEW_STARTED = "access_review.started"
    ACCESS_REVIEW_DECIDED = "access_review.decided"
    ACCESS_REVIEW_REMINDED = "access_review.reminded"
    ACCESS_REVIEW_ESCALATED = "access_review.escalated"
    ACCESS_REVIEW_CLOSED = "access_review.closed"
    ACCESS_REVIEW_REMOVAL_LIFTED = "access_review.removal_lifted"
    # third parties under a sponsor
    EXTERNAL_INVITED = "external.invited"
    EXTERNAL_ACCEPTED = "external.accepted"
    EXTERNAL_CONTRACT_ENDING = "external.contract_ending"
    EXTERNAL_CONTRACT_CHANGED = "external.contract_changed"
    EXTERNAL_ENDED = "external.ended"
    EXTERNAL_SUSPENDED = "external.suspended"
    EXTERNAL_HANDED_OVER = "external.handed_over"
    # personal API tokens
    API_TOKEN_CREATED = "api_token.created"  # noqa: S105  # nosec B105  # an event name
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105  # nosec B105  # an event name
    # the trail itself
    AUDIT_ARCHIVED = "audit.archived"
    AUDIT_EVIDENCE_PACK = "audit.evidence_pack"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_SIGNING_KEY_ADDED = "audit.signing_key_added"
    # sign-in
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    # the catalog
    CATALOG_SYNCED = "catalog.synced"
    # grants
    GRANT_ACTIVATED = "grant.activated"
    GRANT_ACTIVATION_RETRY = "grant.activation_retry"
    GRANT_CREDENTIAL_REVEALED = "grant.credential_revealed"
    GRANT_EXPIRED = "grant.expired"
    GRANT_EXTENDED = "grant.extended"
    GRANT_EXTENSION_FAILED = "grant.extension_failed"
    GRANT_EXTENSION_SCHEDULED = "grant.extension_scheduled"
    GRANT_FAILED = "grant.failed"
    GRANT_REVOKE_FAILED = "grant.revoke_failed"
    GRANT_REVOKE_REQUESTED = "grant.revoke_requested"
    GRANT_REVOKE_RETRY = "grant.revoke_retry"
    GRANT_REVOKE_RETRY_REQUESTED = "grant.revoke_retry_requested"
    GRANT_REVOKED = "grant.revoked"
    GRANT_SCHEDULED = "grant.scheduled"
    # locks: a stop on a user, a profile or a provider target (broker/lifecycle/locks.py)
    LOCK_ENDED = "lock.ended"
    LOCK_LIFT_PROPOSED = "lock.lift_proposed"
    LOCK_LIFTED = "lock.lifted"
    LOCK_PLACED = "lock.placed"
    # MFA
    MFA_BACKUP_CODES_REGENERATED = "mfa.backup_codes_regenerated"
    MFA_ENROL_FAILED = "mfa.enrol_failed"
    MFA_ENROLLED = "mfa.enrolled"
    MFA_FAILED = "mfa.failed"
    MFA_REMOVED = "mfa.removed"
    MFA_VERIFIED = "mfa.verified"
    # single sign-on
    OIDC_LINKED = "oidc.linked"
    # reconciliation
    RECONCILE_ORPHAN_REVOKED = "reconcile.orphan_revoked"
    RECONCILE_ORPHANS_FOUND = "reconcile.orphans_found"
    # access requests
    REQUEST_APPROVED = "request.approved"
    REQUEST_APPROVERS_NOTIFIED = "request.approvers_notified"
    REQUEST_BREAK_GLASS = "request.break_glass"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_DECISION_APPROVE = "request.decision.approve"
    REQUEST_DECISION_DENY = "request.decision.deny"
    REQUEST_DENIED = "request.denied"
    REQUEST_ESCALATED = "request.escalated"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_REMINDER = "request.reminder"
    REQUEST_SUBMITTED = "request.submitted"
    REQUEST_WITHDRAWN = "request.withdrawn"
    REQUEST_LABELLED = "request.labelled"  # an approver said it was unusual, or normal
    # break-glass reviews
    RISK_MODEL_TRAINED = "risk_model.trained"
    REVIEW_CLOSED = "review.closed"
    REVIEW_OVERDUE = "review.overdue"
    # Slack identities
    SLACK_LINKED = "slack.linked"
    SLACK_UNLINKED = "slack.unlinked"


def data_action(kind: str, verb: str) -> str:
    """`data.<kind>.<verb>`: a change of who may do what, as broker/model_audit.py
    records it (e.g. data.account.changed, data.account.groups_added)."""
    return f"data.{kind}.{verb}"
