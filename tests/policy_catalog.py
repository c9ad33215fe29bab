"""A catalog with risk rules, for the policy tests: the test catalog plus three
profiles, and off-hours and new-address weights at 0 so results do not depend
on when and from where the suite runs."""

from tests.conftest import TEST_CATALOG

DB = "{kind: postgres.role, config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}}"
POLICY_CATALOG = (
    TEST_CATALOG.replace(
        "  auditors: [dave]\n",
        "  auditors: [dave]\n  oncall: [alice]\nrisk:\n  weights: {off_hours: 0, new_address: 0}\n",
    )
    + f"""
  - id: steps-db
    title: Two-step approval, SRE then DBA
    provider: {DB}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 1h
    policy:
      steps:
        - {{approvers: {{groups: [sre]}}, approvals: 1}}
        - {{approvers: {{groups: [dba]}}, approvals: 1}}
  - id: auto-db
    title: Auto-approved for on-call with a ticket
    provider: {DB}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 4h
    default_duration: 1h
    policy:
      auto_approve: {{max_risk: 25, requester_groups: [oncall], ticket_pattern: "^INC-[0-9]+$"}}
      extra_approvals_above: {{risk: 30, approvals: 1}}
      deny_above: 100
  - id: crown-jewels
    title: The payment keys
    provider: {DB}
    requesters: {{groups: [engineers]}}
    approvers: {{groups: [sre]}}
    max_duration: 1h
    pending_ttl: 4h
    sensitivity: 50
    policy:
      deny_above: 60
      break_glass: {{max_duration: 30m, review_within: 1h}}
      reminders: {{first_after: 15m, escalate_after: 1h, escalate_to: {{groups: [dba]}}}}
"""
)
