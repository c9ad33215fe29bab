"""The audit trail's Celery tasks, by name, for beat's schedule in the settings
(which cannot import the tasks module)."""

ANCHOR_CHAIN_HEAD = "audit.tasks.anchor_chain_head"
