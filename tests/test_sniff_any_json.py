"""Every reader's sniff takes whatever JSON a file holds without raising: detection sees
the first records of files it does not know yet (a record of another tool, a hand-made
file), and a value of an unexpected type must make a sniff say no, not stop the run."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.readers import registry

KEYS = st.sampled_from(
    [
        "type",
        "role",
        "from",
        "value",
        "content",
        "message",
        "messages",
        "conversations",
        "payload",
        "data",
        "id",
        "sessionId",
        "uuid",
        "parentUuid",
        "snapshot",
        "timestamp",
        "model",
        "history",
        "kind",
        "events",
        "source",
        "action",
        "observation",
        "loglines",
        "items",
        "text",
        "session_id",
        "instance_id",
        "trajectory",
        "tool_calls",
        "name",
        "parts",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "user",
            "assistant",
            "human",
            "gpt",
            "system",
            "response_item",
            "session_meta",
            "gemini",
            "message",
            "event_msg",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(JSON, st.lists(JSON, max_size=4))
def test_every_sniff_takes_any_json(value: Any, head: list[Any]) -> None:
    for reader in registry():
        if reader.layout == "sqlite":  # told the database's table names
            continue
        if reader.layout == "document":  # told the document's outline: any JSON value
            assert reader.sniff(value) in (True, False)
        else:  # told the first lines' values, or the array's first elements
            assert reader.sniff([value, *head]) in (True, False)
            assert reader.sniff(head) in (True, False)
