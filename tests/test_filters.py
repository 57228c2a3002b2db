"""One test per filter: which candidates a rule rejects, and under which reason."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.pairs import FILTER_ORDER, candidates, mark_duplicates, with_dedup_keys
from transforms.schema import SHAREGPT_ROLES, conform

LONG = " ".join(["word"] * 40)


def session(
    *turns: tuple[str | None, str | None], line: int = 1, file_index: int = 0
) -> list[dict[str, object]]:
    return [
        {
            "file_index": file_index,
            "file": f"f{file_index}.jsonl",
            "line": line,
            "conversation": line,
            "format": "sharegpt",
            "session_id": f"s{line}",
            "model": "m",
            "turn": turn,
            "role": SHAREGPT_ROLES.get(role or ""),
            "role_raw": role,
            "typed": SHAREGPT_ROLES.get(role or "") == "user",
            "text": text,
            "has_tool_calls": False,
        }
        for turn, (role, text) in enumerate(turns)
    ]


def as_messages(rows: list[dict[str, object]]) -> pl.LazyFrame:
    return conform(pl.LazyFrame(rows, infer_schema_length=None))


def reasons(
    rows: list[dict[str, object]], *, min_ratio: float = 1.5, min_words: int = 20, responses: str = "each"
) -> pl.DataFrame:
    marked = mark_duplicates(
        with_dedup_keys(
            candidates(as_messages(rows), min_ratio=min_ratio, min_words=min_words, responses=responses)
        )
    )
    return marked.select("line", "turn", "reject_reason").collect()


def expected(*rows: tuple[int, int, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"line": pl.Int64, "turn": pl.Int32, "reject_reason": pl.String}, orient="row"
    )


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        ([("human", "Why?"), ("gpt", LONG)], None),
        ([("human", "Why?"), ("gpt", "")], "empty_response"),
        ([("human", "Why?"), ("gpt", None)], "empty_response"),
        ([("human", "Why?"), ("gpt", "too short")], "short_response"),
        ([("system", "Be kind."), ("gpt", LONG)], "no_prompt"),
        ([("human", ""), ("gpt", LONG)], "no_prompt"),
        # the nearest human message is the prompt, even when it is empty
        ([("human", "Why?"), ("human", None), ("gpt", LONG)], "no_prompt"),
        # `user` is a prompt too (the reference reads only `human`)
        ([("user", "Why?"), ("gpt", LONG)], None),
        ([("human", '{"output": "ok"}'), ("gpt", LONG)], "tool_result_prompt"),
        ([("human", "{" + "x" * 100 + "output"), ("gpt", LONG)], None),  # "output" past char 100
        ([("human", "You are a bot"), ("gpt", LONG)], "system_prompt_leak"),
        ([("human", "# SOUL.md rules"), ("gpt", LONG)], "system_prompt_leak"),
        ([("human", " ".join(["why"] * 30)), ("gpt", LONG)], "low_ratio"),
        ([("human", " \t "), ("gpt", LONG)], "low_ratio"),  # a prompt of no words has no ratio
        (
            [("human", "Code?"), ("gpt", "```\na b c d e f g h i j\n```\n```\nk l m n o p q r s t\n```")],
            "code_only",
        ),
        ([("human", "Run it"), ("gpt", "<tool_call> " + LONG)], "tool_call_artifact"),
        ([("human", "Run it"), ("gpt", "x" * 87 + "function_call " + LONG)], "tool_call_artifact"),
        ([("human", "Run it"), ("gpt", "x" * 88 + "function_call " + LONG)], None),
    ],
)
def test_each_filter(turns: list[tuple[str | None, str | None]], reason: str | None) -> None:
    assert_frame_equal(reasons(session(*turns)), expected((1, len(turns) - 1, reason)))


def test_first_failing_reason_wins() -> None:
    # fails no_prompt, system_prompt_leak is never reached; short_response beats both
    rows = session(("gpt", "short"), ("human", "You are"), ("gpt", "short"), ("gpt", LONG))
    assert_frame_equal(
        reasons(rows),
        expected((1, 0, "short_response"), (1, 2, "short_response"), (1, 3, "system_prompt_leak")),
    )


def test_duplicate_in_session_keeps_the_first() -> None:
    rows = session(("human", "Why?"), ("gpt", LONG), ("human", "Why?"), ("gpt", LONG))
    assert_frame_equal(reasons(rows), expected((1, 1, None), (1, 3, "duplicate_in_session")))


def test_duplicate_across_sessions_compares_stripped_texts() -> None:
    rows = session(("human", "Why?"), ("gpt", LONG), line=1) + session(
        ("human", " Why?\n"), ("gpt", LONG + "  "), line=2
    )
    assert_frame_equal(reasons(rows), expected((1, 1, None), (2, 1, "duplicate")))


def test_keys_seen_in_earlier_batches_are_duplicates() -> None:
    rows = session(("human", "Why?"), ("gpt", LONG))
    messages = as_messages(rows)
    keyed = with_dedup_keys(candidates(messages, min_ratio=1.5, min_words=20))
    seen = mark_duplicates(keyed).collect()["dedup_key"]
    again = mark_duplicates(keyed, pl.col("dedup_key").is_in(seen.implode())).collect()
    assert again["reject_reason"].to_list() == ["duplicate"]


def test_prompt_never_comes_from_another_session() -> None:
    rows = session(("human", "Why?"), line=1) + session(("gpt", LONG), line=2)
    assert_frame_equal(reasons(rows), expected((2, 0, "no_prompt")))


def test_reasons_are_the_reference_order() -> None:
    assert FILTER_ORDER == (
        "not_final",
        "empty_response",
        "short_response",
        "no_prompt",
        "tool_result_prompt",
        "system_prompt_leak",
        "low_ratio",
        "code_only",
        "tool_call_artifact",
        "duplicate_in_session",
        "duplicate",
    )


def test_a_user_message_nobody_typed_ends_the_prompt_before_it() -> None:
    rows = session(
        ("human", "Why?"), ("gpt", LONG), ("human", "<command-name>/init</command-name>"), ("gpt", LONG)
    )
    rows[2]["typed"] = False
    assert_frame_equal(reasons(rows), expected((1, 1, None), (1, 3, "no_prompt")))


def test_turns_that_only_call_tools_are_not_responses() -> None:
    rows = session(("human", "Fix it"), ("gpt", None), ("tool", "ok"), ("gpt", LONG))
    rows[1]["has_tool_calls"] = True
    assert_frame_equal(reasons(rows), expected((1, 3, None)))


def test_final_keeps_only_the_answer_after_the_tool_loop() -> None:
    rows = session(
        ("human", "Fix it"),
        ("gpt", "Looking at the file first, " + LONG),
        ("tool", "contents"),
        ("gpt", "Fixed: " + LONG),
        ("gpt", ""),  # no text: never the final answer
        ("human", "Thanks, and now?"),
        ("gpt", "Now " + LONG),
    )
    assert_frame_equal(
        reasons(rows, responses="final"),
        expected((1, 1, "not_final"), (1, 3, None), (1, 4, "not_final"), (1, 6, None)),
    )
    assert_frame_equal(
        reasons(rows, responses="each"),
        expected((1, 1, None), (1, 3, None), (1, 4, "empty_response"), (1, 6, None)),
    )
