"""The dataset card (``README.md``) of an export, in the Hugging Face convention.

YAML front matter first: ``configs`` names each split's file, so ``load_dataset(DIR)``
loads exactly those (the JSONL files, or the Parquet files when there are both), and
``license`` is left empty for the user to fill in: only they know what the sessions'
authors allow. Then prose from the export's record (``export.json``): what the data is,
its splits, how the run made it (its rules, input figures, rejects, scrubbing), its
columns and one example row.
"""

from __future__ import annotations

import json
from typing import Any

#: Characters of a text the card's example shows.
EXAMPLE_CHARS = 300

FORMAT_TOOLS = {
    "messages": "the conversational format of TRL's `SFTTrainer`, OpenAI's fine-tuning files and "
    "axolotl's `chat_template` datasets",
    "prompt-completion": "TRL's prompt-completion format",
    "sharegpt": "the ShareGPT format of LLaMA-Factory and axolotl",
    "alpaca": "the Alpaca format (LLaMA-Factory's and others')",
}

#: Each format's columns: (name, type as ``datasets`` reads the JSONL, meaning).
FORMAT_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "messages": [
        (
            "messages",
            "list of {role: string, content: string}",
            "a `system` message when the export was given one, then the `user` prompt, then the "
            "`assistant` answer",
        )
    ],
    "prompt-completion": [
        ("prompt", "string", "the prompt a person typed"),
        ("completion", "string", "the answer the model gave"),
    ],
    "sharegpt": [
        (
            "conversations",
            "list of {from: string, value: string}",
            "a `system` turn when the export was given a system prompt, then the `human` prompt, "
            "then the `gpt` answer",
        )
    ],
    "alpaca": [
        ("instruction", "string", "the prompt a person typed"),
        ("input", "string", "always empty: the prompt is the whole instruction"),
        ("output", "string", "the answer the model gave"),
        ("system", "string", "the system prompt (only when the export was given one)"),
    ],
}

RULE_NAMES = {
    "min_ratio": "minimum answer/prompt word ratio (`--min-ratio`)",
    "min_words": "minimum words in an answer (`--min-words`)",
    "responses": "which assistant messages answer a prompt (`--responses`)",
    "strip_think": "inline `<think>` blocks removed (`--strip-think`)",
    "format": "layout forced on every input (`--format`; none: detected per file)",
    "scrub": "what was replaced by a placeholder (`--scrub`)",
}

INPUT_FIGURES = {
    "files_scanned": "session files read",
    "sessions": "sessions (conversations with a message)",
    "messages": "messages",
    "skipped_messages": "messages skipped (not objects, or text not a string)",
    "malformed_lines": "malformed records (quarantined)",
    "damaged_files": "damaged files (quarantined)",
    "unrecognized_files": "files of no known layout (not read)",
    "raw_pairs": "pairs that passed the filters before dedup",
    "duplicates_removed": "duplicates removed",
    "unique_pairs": "pairs written by the run",
}


def _yaml_front_matter(record: dict[str, Any]) -> str:
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split, path in record["data_files"].items():
        lines += [f"  - split: {split}", f"    path: {path}"]
    lines += [
        "# Fill in the licence that the sessions' authors allow: an identifier such as",
        "# cc-by-4.0, mit or apache-2.0 (or `other`, with a licence_name and licence_link).",
        "license:",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- sft",
        "- agent-transcripts",
        "---",
    ]
    return "\n".join(lines)


def _shortened(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EXAMPLE_CHARS:
        return value[:EXAMPLE_CHARS] + " [...]"
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    return value


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"`{json.dumps(value)}`"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|")


def _rule(value: Any) -> Any:
    return "none" if value is None else value


def _percent(share: float) -> str:
    return f"{share * 100:.2f}%"


def _splits_section(record: dict[str, Any]) -> str:
    rows = []
    for split, figures in record["splits"].items():
        files = ", ".join(f"`{name}`" for name in record["files"].get(split, [])) or "none"
        rows.append(
            (
                split,
                files,
                figures["rows"],
                _percent(figures["row_share"]),
                figures["sessions"],
                _percent(figures["session_share"]),
            )
        )
    table = _table(("split", "files", "pairs", "of the pairs", "sessions", "of the sessions"), rows)
    no_validation = (
        "\n\nThe export was made with a validation share of 0: there is no validation split."
        if "validation" not in record["data_files"]
        else ""
    )
    return (
        "## Splits\n\n"
        f"{table}\n\n"
        "The split is by session: every pair of a session is on the same side, so no "
        "conversation has pairs in both splits. A session is in validation when its id, hashed "
        f"with xxh3-64 seeded with {record['seed']} and scaled to [0, 1), falls below "
        f"{record['val_share']:g}; the same seed always gives the same split, and a session keeps its "
        "side as the archive grows. (When no session falls below, the lowest goes to validation; when "
        f"every one does, the highest stays in train.){no_validation}"
    )


def _made_section(record: dict[str, Any]) -> str:
    figures = record["run"]
    rules = figures.get("rules", {})
    runs = figures.get("runs", 1)
    source = (
        "one run of `compound pairs`"
        if runs == 1
        else f"{runs:,} incremental runs of `compound pairs` (the figures are added up over the runs)"
    )
    rule_rows = [(RULE_NAMES[name], _rule(rules[name])) for name in RULE_NAMES if name in rules]
    input_rows = [(meaning, figures[name]) for name, meaning in INPUT_FIGURES.items() if name in figures]
    reject_rows = [(f"`{reason}`", count) for reason, count in figures.get("rejected", {}).items()]
    layout_rows = [
        (f"`{layout}`", counts.get("files", 0), counts.get("sessions", 0), counts.get("pairs", 0))
        for layout, counts in figures.get("formats", {}).items()
    ]
    parts = [
        "## How it was made\n\n"
        f"The pairs were harvested by {source} from an archive of session transcripts, with "
        "these rules:\n\n" + _table(("rule", "value"), rule_rows),
        "What the run read, and what it kept:\n\n" + _table(("figure", "count"), input_rows),
        "Candidates rejected, each under the first filter it failed:\n\n"
        + _table(("reason", "candidates"), reject_rows),
        "By the layout of the session files:\n\n"
        + _table(("layout", "files", "sessions", "pairs"), layout_rows),
        _scrub_paragraph(rules.get("scrub"), figures.get("redactions", {})),
        _export_paragraph(record),
    ]
    return "\n\n".join(parts)


def _scrub_paragraph(scrub: str | None, redactions: dict[str, int]) -> str:
    if scrub == "none":
        return (
            "**Scrubbing: none.** The texts are written as the sessions hold them (`--scrub none`): "
            "check them for credentials and personal data before you share this dataset."
        )
    if scrub is None:
        return "**Scrubbing:** the run did not record its scrubbing setting."
    what = "credentials" if scrub == "secrets" else "credentials and personal data"
    found = (
        "; ".join(f"`{rule}`: {count:,}" for rule, count in redactions.items())
        if redactions
        else "none were found in the pairs"
    )
    return (
        f"**Scrubbing: `{scrub}`.** Every detected secret ({what}) in the texts was replaced by a "
        "typed placeholder such as `[REDACTED:aws_access_key]`. Replaced in the pairs the run "
        f"wrote: {found}."
    )


def _export_paragraph(record: dict[str, Any]) -> str:
    kept = []
    if record["format_filter"]:
        kept.append("read from the layouts " + ", ".join(f"`{name}`" for name in record["format_filter"]))
    if record["model_filter"]:
        kept.append("answered by the models " + ", ".join(f"`{name}`" for name in record["model_filter"]))
    filtered = f", only the pairs {' and '.join(kept)}" if kept else ""
    system = (
        f" Every row carries the system prompt `{_cell(record['system'])}`."
        if record["system"] is not None
        else " No system prompt was added."
    )
    return (
        f"`compound export` took {record['pairs_exported']:,} of the run's {record['pairs_read']:,} "
        f"pairs{filtered}, from {record['sessions_exported']:,} sessions.{system}"
    )


def _columns_section(record: dict[str, Any]) -> str:
    rows = [
        (f"`{name}`", kind, meaning)
        for name, kind, meaning in FORMAT_COLUMNS[record["format"]]
        if name != "system" or record["system"] is not None
    ]
    parquet = (
        "\n\nThe Parquet files hold the same rows as the JSONL files; the card points the loader "
        "at the Parquet files."
        if any(name.endswith(".parquet") for name in record["data_files"].values())
        else ""
    )
    return "## Columns\n\n" + _table(("column", "type", "meaning"), rows) + parquet


def dataset_card(record: dict[str, Any], example: dict[str, Any]) -> str:
    """The card of the export ``record`` describes, with ``example`` (a row as written)."""
    tools = FORMAT_TOOLS[record["format"]]
    example_text = json.dumps(_shortened(example), indent=2, ensure_ascii=False)
    sections = [
        _yaml_front_matter(record),
        "# Prompt and answer pairs from AI-agent sessions",
        f"{record['pairs_exported']:,} training pairs from {record['sessions_exported']:,} sessions of "
        "AI-agent and chat transcripts, each a terse prompt a person typed and the rich answer the "
        "model gave. They were harvested by `compound pairs` and written by `compound export` in the "
        f"`{record['format']}` format: {tools}.",
        _splits_section(record),
        _made_section(record),
        _columns_section(record),
        "## Example\n\nThe first row of the train split (texts longer than "
        f"{EXAMPLE_CHARS} characters are cut here, at `[...]`):\n\n```json\n{example_text}\n```",
        "## Loading\n\n```python\nfrom datasets import load_dataset\n\n"
        'dataset = load_dataset("path/to/this/folder")  # ' + " and ".join(record["data_files"]) + "\n```",
        "## Licence\n\nThe `license` field above is left empty: the texts are what the sessions' "
        "people and models wrote, and only you know what they allow. Fill it in before you publish "
        "the dataset.",
    ]
    return "\n\n".join(sections) + "\n"
