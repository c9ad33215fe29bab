"""Text people type that Airlock stores and shows again: in terminals (the CLI),
Slack, web pages and PostgreSQL, which takes no NUL."""

import re

# C0 and C1 control characters but tab, newline and carriage return.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def without_control_characters(text: str) -> str:
    """`text` with each control character shown as "?" (for text Airlock composes
    from what someone typed, which must not be refused for it)."""
    return CONTROL_CHARACTERS.sub("?", text)
