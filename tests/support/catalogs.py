"""The catalogs the tests apply: the test catalog (every provider kind, the
personas' groups), and the policy catalog, which adds risk rules."""

import textwrap

TEST_CATALOG = textwrap.dedent(
    r"""
    version: 1
    groups:
      engineers: [alice]
      sre: [bob, carol]
      dba: [erin]
      auditors: [dave]
      security: [carol, erin]
    security: {groups: [security]}
    profiles:
      - id: test-db
        title: Test database, read-only
        provider:
          kind: postgres.role
          config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        approvals_required: 1
        max_duration: 2h
        default_duration: 1h
        ticket_pattern: "^INC-[0-9]+$"
        pending_ttl: 30m
        extension: {max_count: 2, max_total: 3h, after_share: 0.5}
      - id: test-db-critical
        title: Test database, two approvals
        provider:
          kind: postgres.role
          config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        approvals_required: 2
        max_duration: 1h
        ticket_required: true
      - id: broken-db
        title: A profile whose granted role does not exist at the source
        provider:
          kind: postgres.role
          config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [no_such_role]}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        max_duration: 1h
      - id: vault-token
        title: Vault token to read payment secrets
        provider:
          kind: vault.token
          config: {policies: [payments-read]}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        max_duration: 2h
        extension: {max_total: 4h, after_share: 0, approval: auto}
      - id: vault-db
        title: Database credentials from Vault
        provider:
          kind: vault.database
          config: {mount: database, role: reader}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        max_duration: 2h
      - id: vault-ssh
        title: SSH to the payment hosts
        provider:
          kind: vault.ssh
          config: {mount: ssh, role: engineer, valid_principals: [ubuntu]}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        max_duration: 2h
      - id: aws-reader
        title: Read the payments bucket in AWS
        provider:
          kind: aws.sts
          config: {role_arn: "arn:aws:iam::123456789012:role/payments-reader"}
        requesters: {groups: [engineers]}
        approvers: {groups: [sre]}
        max_duration: 1h
      - id: other-db
        title: Another team's database
        provider:
          kind: postgres.role
          config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}
        requesters: {groups: [engineers]}
        approvers: {groups: [dba]}
        max_duration: 1h
    """
)

# The test catalog plus three profiles with risk rules, and off-hours and
# new-address weights at 0 so results do not depend on when and from where the
# suite runs.
DB = "{kind: postgres.role, config: {dsn_env: AIRLOCK_PG_DSN_TEST, granted_roles: [app_reader]}}"
POLICY_CATALOG = (
    TEST_CATALOG.replace("  auditors: [dave]\n", "  auditors: [dave]\n  oncall: [alice]\n").replace(
        "profiles:\n", "risk:\n  weights: {off_hours: 0, new_address: 0}\nprofiles:\n", 1
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


# test-db open to third parties, whose grants are capped at 30 minutes.
EXTERNAL_CATALOG = TEST_CATALOG.replace(
    "    extension: {max_count: 2, max_total: 3h, after_share: 0.5}\n",
    "    extension: {max_count: 2, max_total: 3h, after_share: 0.5}\n    external: allowed\n",
    1,
).replace("security: {groups: [security]}\n", "security: {groups: [security]}\n"
          "externals: {max_duration: 30m}\n", 1)  # fmt: skip
