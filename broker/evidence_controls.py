"""The control map of an evidence pack: each control an auditor asks about, the
pack's files that evidence it, what they show and what they do not.

Only what the files show is claimed. A control the pack covers in part says
what is missing; an auditor tests the rest elsewhere.
"""

from dataclasses import asdict, dataclass
from typing import Any

EVENTS = "audit/events.jsonl"
MANIFEST = "audit/events.jsonl.manifest.json"
ACCESS_REPORT = "access-report.json"
BREAK_GLASS = "break-glass-reviews.json"
ACCESS_REVIEWS = "access-reviews.json"
ANCHORS = "anchors/"
KEYRING = "keyring.json"
INDEX = "pack.json"

PARTIAL = "partial"


@dataclass(frozen=True)
class Control:
    framework: str
    control: str
    title: str
    evidence: tuple[str, ...]
    shows: str
    missing: str
    coverage: str = PARTIAL


PCI = "PCI DSS v4.0"
SOC2 = "SOC 2 (2017 Trust Services Criteria)"
RBI = "RBI Cyber Security Framework in Banks (2 June 2016), Annex 1"

CONTROLS = (
    Control(
        PCI,
        "7.2",
        "Access to system components and data is appropriately defined and assigned.",
        (ACCESS_REPORT, EVENTS, BREAK_GLASS),
        "Every grant that gave access in the period: who asked, for which profile of the "
        "catalog, why, under which ticket, who approved it (with the MFA method and time), "
        "how long it lasted and how it ended (7.2.2, 7.2.3). Catalog changes are "
        "catalog.synced events.",
        "Accounts that exist outside Airlock are not shown; 7.2.4's reviews are the "
        "access reviews row.",
    ),
    Control(
        PCI,
        "8.4",
        "Multi-factor authentication is implemented to secure access into the CDE.",
        (ACCESS_REPORT, EVENTS),
        "Each approval was given after an MFA step-up in Airlock (method and time in the "
        "access report); sign-ins and MFA successes and failures are events "
        "(auth.*, mfa.*).",
        "MFA at the target systems themselves (databases, Vault, AWS) is theirs to "
        "enforce; the pack does not show it.",
    ),
    Control(
        PCI,
        "8.6",
        "Use of application and system accounts and associated authentication factors "
        "is strictly managed.",
        (ACCESS_REPORT, BREAK_GLASS, EVENTS),
        "Interactive use of privileged credentials went through a time-limited grant to a "
        "named person, with a reason and an approval or a reviewed break-glass (8.6.1).",
        "8.6.2 and 8.6.3 (no passwords in scripts or files; application account "
        "passwords protected and changed) are not shown.",
    ),
    Control(
        PCI,
        "10.2",
        "Audit logs are implemented to support the detection of anomalies and suspicious "
        "activity, and the forensic analysis of events.",
        (EVENTS, MANIFEST),
        "Every Airlock event of the period with who, what, when, channel, address, user "
        "agent, target and outcome (10.2.2): access granted and ended, failed sign-ins and "
        "MFA (10.2.1.4), changes to accounts and credentials (10.2.1.5), exports of the "
        "log itself (audit.exported, audit.evidence_pack; 10.2.1.3).",
        "What was done on the target systems with the access: their own logs.",
    ),
    Control(
        PCI,
        "10.3",
        "Audit logs are protected from destruction and unauthorized modifications.",
        (EVENTS, MANIFEST, ANCHORS, KEYRING, INDEX),
        "Each event carries the hash of the one before; the manifest, signed with Ed25519, "
        "seals the range; the anchors, signed and written to an S3 bucket under Object "
        "Lock in compliance mode, show the events were not rewritten or removed after "
        "they were anchored (10.3.2, 10.3.3, 10.3.4).",
        "Who may read the log (10.3.1) is Airlock's permissions and the database's roles, "
        "not shown here. Events after the newest anchor rest on the signature alone; a "
        "pack made without a witness holds no anchor.",
    ),
    Control(
        PCI,
        "10.5",
        "Audit log history is retained and available for analysis.",
        (EVENTS, ANCHORS),
        "The period's events were all there, in an unbroken chain, when the pack was made; "
        "the anchors are kept under Object Lock retention.",
        "The retention period itself (10.5.1: twelve months, three at once available) is "
        "configuration; the pack shows the period it holds, not the policy.",
    ),
    Control(
        SOC2,
        "CC6.1",
        "Logical access security software, infrastructure and architectures over "
        "protected information assets.",
        (ACCESS_REPORT, EVENTS),
        "Access to the systems Airlock brokers is given just in time from a catalog of "
        "profiles, each grant approved, time-limited and ended by Airlock.",
        "Network security, encryption and the systems Airlock does not broker.",
    ),
    Control(
        SOC2,
        "CC6.2",
        "Users are registered and authorized before credentials are issued; credentials "
        "are removed when access is no longer authorized.",
        (ACCESS_REPORT, EVENTS),
        "Each credential was issued after the request was approved, and ended (expired "
        "or revoked) with its grant; account changes are data.account.* events.",
        "Joiners and leavers in the identity provider.",
    ),
    Control(
        SOC2,
        "CC6.3",
        "Access is authorized, modified or removed based on roles and responsibilities, "
        "with least privilege and segregation of duties.",
        (ACCESS_REPORT, BREAK_GLASS, EVENTS),
        "Approvers are others than the requester; break-glass use is reviewed by an "
        "approver other than who used it; grants are per profile and time-limited.",
        "Access granted outside Airlock; the periodic reviews are the access reviews row.",
    ),
    Control(
        SOC2,
        "CC7.2",
        "System components are monitored for anomalies indicative of malicious acts, "
        "and anomalies are analyzed.",
        (EVENTS, BREAK_GLASS),
        "Anomaly alerts (alert.raised), credentials found at their source without a "
        "grant (reconcile.orphans_found), break-glass use and its review.",
        "Monitoring of systems beyond Airlock.",
    ),
    Control(
        RBI,
        "8",
        "User Access Control / Management",
        (ACCESS_REPORT, BREAK_GLASS, EVENTS),
        "Access rights given on a need-to-know basis, for a specific duration, through "
        "an established process (request, approval with MFA, expiry); privileged access "
        "to critical systems allowed, logged and monitored centrally.",
        "Dormant accounts and endpoint controls (access reviews: their own row).",
    ),
    Control(
        RBI,
        "16",
        "Maintenance, Monitoring, and Analysis of Audit Logs",
        (EVENTS, MANIFEST, ANCHORS, INDEX),
        "The log of the period, complete and tamper-evident (hash chain, signed manifest, "
        "anchors on a witness), ready for analysis; alerts are events.",
        "How the logs are analysed and by whom: the bank's own process.",
    ),
    Control(
        RBI,
        "17",
        "Audit Log Settings",
        (EVENTS,),
        "Each entry identifies itself uniquely (sequence number and hash) and has its time, "
        "actor, source address, user agent, channel, target and outcome.",
        "Log settings of the systems Airlock does not run.",
    ),
    Control(
        "Access reviews",
        "(PCI DSS 7.2.4, SOC 2 CC6.2/CC6.3, RBI Annex 1 8)",
        "Periodic review of who has access",
        (ACCESS_REVIEWS, EVENTS),
        "Each access review closed in the period: who was eligible (for a profile, or in "
        "a group), the facts each reviewer was shown, who kept or removed whom, when and "
        "why, who was not reviewed by the deadline and what the campaign's rule did; each "
        "signed on its own. Its steps are access_review.* events.",
        "Whether reviews ran often enough is the schedule's (the catalog's `reviews`); a "
        "requester's line manager is not known to Airlock, so cannot be the reviewer.",
    ),
)


def control_map() -> dict[str, Any]:
    return {
        "controls": [
            {**asdict(control), "evidence": list(control.evidence)} for control in CONTROLS
        ]
    }


def control_map_markdown() -> str:
    lines = [
        "# Control map",
        "",
        "Each control, the files of this pack that evidence it, what they show and what "
        "they do not. pack.json lists every file's sha256 and is signed.",
    ]
    framework = None
    for control in CONTROLS:
        if control.framework != framework:
            framework = control.framework
            lines += ["", f"## {framework}"]
        files = ", ".join(f"`{name}`" for name in control.evidence)
        lines += [
            "",
            f"### {control.control} {control.title}",
            "",
            f"- Evidence ({control.coverage}): {files}",
            f"- Shows: {control.shows}",
            f"- Does not show: {control.missing}",
        ]
    return "\n".join(lines) + "\n"
