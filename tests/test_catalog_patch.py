"""The catalog patch an access review offers: the right line of the right list,
or a note when the file cannot say it, never a wrong or silent change."""

import pytest

from broker.catalog.patch import Removal, removal_patch


def changed(text: str, *removals: Removal) -> tuple[list[str], list[str]]:
    diff, notes = removal_patch(text, "access.yaml", list(removals))
    lines = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    return lines, notes


@pytest.mark.parametrize(
    ("text", "removal", "lines"),
    [
        ("groups:\n  sre: [bob, carol]\n", Removal("bob", group="sre"),
         ["-  sre: [bob, carol]", "+  sre: [carol]"]),
        ("groups:\n  sre: [bobby, bob]  # leads\n", Removal("bob", group="sre"),
         ["-  sre: [bobby, bob]  # leads", "+  sre: [bobby]  # leads"]),
        ("groups:\n  sre:  # was [bob, carol]\n    - bob\n    - carol\n",
         Removal("bob", group="sre"), ["-    - bob"]),
        ("groups:\n  sre:\n    - bob\n  dev: [x]\n", Removal("bob", group="sre"),
         ["-  sre:", "-    - bob", "+  sre: []"]),
        ("groups:\n  sre-oncall: [bob]\n  sre: [bob]\n", Removal("bob", group="sre"),
         ["-  sre: [bob]", "+  sre: []"]),
        ("profiles:\n  - id: p2\n    requesters: {groups: [dev], users: [zoe, amy]}\n",
         Removal("amy", profile="p2"),
         ["-    requesters: {groups: [dev], users: [zoe, amy]}",
          "+    requesters: {groups: [dev], users: [zoe]}"]),
        ("profiles:\n  - id: p1\n    requesters:\n      users:\n        - zoe\n        - amy\n",
         Removal("zoe", profile="p1"), ["-        - zoe"]),
    ],
)  # fmt: skip
def test_the_patch_removes_exactly_that_person(text, removal, lines):
    assert changed(text, removal) == (lines, [])


def test_what_the_file_cannot_say_is_a_note_not_a_change():
    text = (
        "groups:\n  engineers: [alice]\nprofiles:\n  - id: p\n"
        "    requesters: {groups: [engineers], users: [alice]}\n"
    )
    lines, notes = changed(text, Removal("alice", profile="p"))
    assert lines[1] == "+    requesters: {groups: [engineers], users: []}"
    assert notes == [
        "alice also has p through the group(s) engineers, which give them other profiles "
        "too: change the groups by hand (Airlock keeps them out meanwhile)"
    ]
    assert changed("groups:\n  sre: [carol]\n", Removal("bob", group="sre"))[0] == []
    assert "not named in group sre" in changed("groups: {}\n", Removal("bob", group="sre"))[1][0]
