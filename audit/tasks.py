"""Celery tasks of the audit trail."""

import logging

from celery import shared_task

from audit import anchors, task_names
from audit.witness import WitnessError

log = logging.getLogger(__name__)


@shared_task(name=task_names.ANCHOR_CHAIN_HEAD)
def anchor_chain_head() -> None:
    # The next run tries again: a missed anchor widens the window, it loses nothing.
    try:
        anchor = anchors.anchor_head()
    except WitnessError as exc:
        log.error("the audit chain's head was not anchored: %s", exc)
        return
    if anchor is not None:
        log.info("anchored audit event #%s at %s", anchor.seq, anchor.location)
