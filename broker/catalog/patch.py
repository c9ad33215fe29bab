"""The catalog change that makes an access review's removals permanent: a unified
diff of the catalog file to commit, so that the file stops granting what the
review took away (until then, Airlock's overlay holds it)."""

import difflib
import re
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Removal:
    person: str
    group: str = ""  # out of this group of the catalog's `groups:`
    profile: str = ""  # or no longer among this profile's requesters


def removal_patch(text: str, path: str, removals: list[Removal]) -> tuple[str, list[str]]:
    """The diff, and what it cannot express (a person who may ask for a profile
    through a group that gives them other profiles too: the group's line is not
    the review's to change)."""
    lines = text.splitlines(keepends=True)
    changed, notes = list(lines), []
    through = _groups_giving(text)
    for removal in removals:
        if removal.group:
            block = _group_block(changed, removal.group)
            done = _drop_member(changed, block, removal.person, users_only=False)
            where = f"group {removal.group}"
        else:
            block = _requesters_users(changed, removal.profile)
            done = _drop_member(changed, block, removal.person, users_only=True)
            where = f"{removal.profile}'s requesters.users"
        groups = through(removal.profile, removal.person) if removal.profile else []
        if groups:
            notes.append(
                f"{removal.person} also has {removal.profile} through the group(s) "
                f"{', '.join(groups)}, which give them other profiles too: change the groups "
                "by hand (Airlock keeps them out meanwhile)"
            )
        elif not done:
            notes.append(
                f"{removal.person}: not named in {where} of the file; change it by hand "
                "(Airlock keeps them out meanwhile)"
            )
    diff = difflib.unified_diff(lines, changed, fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(diff), notes


def _groups_giving(text: str):
    """profile, person -> the groups of the file through which the person may ask for it."""
    try:
        catalog = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        catalog = {}
    groups = catalog.get("groups") or {} if isinstance(catalog, dict) else {}
    profiles = catalog.get("profiles") or [] if isinstance(catalog, dict) else []

    def through(profile: str, person: str) -> list[str]:
        spec = next((p for p in profiles if isinstance(p, dict) and p.get("id") == profile), {})
        requesters = (spec.get("requesters") or {}).get("groups") or []
        return [g for g in requesters if person in (groups.get(g) or [])]

    return through


def _code(line: str) -> str:
    """The line without its comment."""
    return line.split("#", 1)[0].rstrip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_after(lines: list[str], start: int) -> range:
    """The lines nested under line `start` (more indented, blank, or comments)."""
    end = start + 1
    while end < len(lines) and (
        not _code(lines[end]).strip() or _indent(lines[end]) > _indent(lines[start])
    ):
        end += 1
    return range(start, end)


def _group_block(lines: list[str], group: str) -> range:
    for number, line in enumerate(lines):
        if re.match(r"^groups:\s*(#.*)?$", line):
            for inner in _block_after(lines, number)[1:]:
                if re.match(rf"^\s+{re.escape(group)}:", lines[inner]):
                    return _block_after(lines, inner)
    return range(0)


def _requesters_users(lines: list[str], profile: str) -> range:
    for number, line in enumerate(lines):
        if re.match(rf"^\s*-\s+id:\s*['\"]?{re.escape(profile)}['\"]?\s*(#.*)?$", line):
            # The profile's own keys sit two columns right of its "- ".
            for inner in _block_after(lines, number)[1:]:
                if re.match(r"^\s+requesters:", lines[inner]):
                    return _block_after(lines, inner)
    return range(0)


def _drop_member(lines: list[str], block: range, person: str, *, users_only: bool) -> bool:
    """Remove `person` from the flow list (`[a, b]`) or block list (`- a`) in the
    block: for a profile's requesters, from its `users:` list only."""
    flow_list = r"users:\s*\[([^\]]*)\]" if users_only else r"\[([^\]]*)\]"
    item = rf"^\s+-\s+['\"]?{re.escape(person)}['\"]?\s*(#.*)?$"
    for number in block:
        line = _code(lines[number])
        if flow := re.search(flow_list, line):
            members = [m.strip() for m in flow.group(1).split(",") if m.strip()]
            kept = [m for m in members if m.strip("'\"") != person]
            if len(kept) != len(members):
                original = lines[number]
                lines[number] = (
                    original[: flow.start(1)] + ", ".join(kept) + original[flow.end(1) :]
                )
                return True
        elif re.match(item, line) and (not users_only or _parent(lines, number) == "users:"):
            del lines[number]
            _empty_list_stays_a_list(lines, number, _indent(line))
            return True
    return False


def _empty_list_stays_a_list(lines: list[str], number: int, item_indent: int) -> None:
    """`users:` left with no item would read as null: it becomes `users: []`."""
    above = number - 1
    while above >= 0 and not _code(lines[above]).strip():
        above -= 1
    following = lines[number] if number < len(lines) else ""
    no_sibling = not _code(following).strip() or _indent(following) < item_indent
    if no_sibling and above >= 0 and _code(lines[above]).endswith(":"):
        key, comment = _code(lines[above]), lines[above][len(_code(lines[above])) :].rstrip("\n")
        lines[above] = f"{key} []{comment}\n"


def _parent(lines: list[str], number: int) -> str:
    """The key of the nearest line above that is less indented."""
    for above in range(number - 1, -1, -1):
        code = _code(lines[above])
        if code.strip() and _indent(lines[above]) < _indent(lines[number]):
            return code.strip()
    return ""
