"""Credentials (and, on request, personal data) replaced by typed placeholders.

Agent transcripts are full of credentials: keys pasted into prompts, ``.env`` files and
``cat ~/.aws/credentials`` in tool output that the agent then quotes, tokens in URLs. A
model trained on them can repeat them, so every text the job writes goes through
``scrubbed``: each match of a rule becomes ``[REDACTED:<rule>]`` and the text around it
stays.

The rules are regexes run by polars over whole columns. Most come from Yelp's
detect-secrets (its plugins' denylists, as the README lists them), rewritten for the
regex engine polars uses (no look-around, no back-references: a quoted value is matched
once per kind of quote, and a token's tail is matched whole instead of being cut at a
length, so that no part of it is left). The rest cover what agent logs hold and
detect-secrets does not know (Anthropic, OpenAI project, Hugging Face and Google API
keys, ``Authorization: Bearer`` headers, ``NAME_TOKEN=...`` lines of ``.env`` files).
detect-secrets' entropy plugins are left out on purpose: commit SHAs, UUIDs, base64
images and lockfile hashes are not secrets.

A text is scrubbed only where ``may_hold`` finds that a rule may match in it: one
Hyperscan pass over the column's bytes, so that the many texts without a secret cost
that scan and nothing more.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from functools import cache
from typing import cast

import hyperscan
import numpy as np
import polars as pl
import pyarrow as pa

PLACEHOLDER = "[REDACTED:{}]"
#: A placeholder in a written text, to count redactions by rule.
PLACEHOLDER_PATTERN = r"\[REDACTED:([a-z0-9_]+)\]"
SCRUB_MODES = ("secrets", "secrets,pii", "none")


@dataclass(frozen=True)
class Rule:
    """``pattern`` matches a secret, with the text around it that stays in groups
    ``before`` and ``after`` (the replacement is ``${before}`` placeholder ``${after}``)."""

    name: str
    pattern: str
    source: str  # where the rule comes from: a detect-secrets plugin, or "compound"
    before: int | None = None  # a group kept before the placeholder
    after: int | None = None  # a group kept after it
    #: strings one of which a text holds wherever the rule matches: the text is looked at
    #: only then (None: the rule's own pattern is the test)
    literals: tuple[str, ...] | None = None

    @property
    def regex(self) -> str:
        """The pattern with ASCII word boundaries: a Unicode ``\\b`` keeps the regex engine
        off its fast automaton (a token is ASCII anyway)."""
        return self.pattern.replace(r"\b", r"(?-u:\b)")

    @property
    def replacement(self) -> str:
        kept_before = f"${{{self.before}}}" if self.before else ""
        kept_after = f"${{{self.after}}}" if self.after else ""
        return f"{kept_before}{PLACEHOLDER.format(self.name)}{kept_after}"


_KEYWORDS = (
    r"api_?key|auth_?key|service_?key|account_?key|db_?key|database_?key|priv_?key|private_?key|client_?key"
    r"|db_?pass|database_?pass|key_?pass|password|passwd|pwd|secret|contraseña|contrasena"
)
#: detect-secrets' keyword plugin, quotes required (what it applies to text of no known
#: file type): ``password = "..."``, ``api_key: '...'``, ``"secret" => "..."``, also inside
#: JSON text whose quotes are escaped. A value that is plainly a placeholder (``${VAR}``,
#: ``<your key>``, ``%s``, ``***``, one of ours) is left alone.
_ASSIGNED = r"(?i)(\w*(?:" + _KEYWORDS + r")\w*(?:\\?[\]'\"]){{0,2}}\s*(?::=?|={{1,3}}|!==?|=>)\s*@?\\?{q})"
_VALUE = r"([^{q}\\\n$<{{%*\[\s][^{q}\\\n]{{0,255}})(\\?{q})"
_ENV_KEYWORDS = (
    r"[A-Z0-9_]*(?:API_?KEY|AUTH_?KEY|SERVICE_?KEY|ACCOUNT_?KEY|PRIVATE_?KEY|CLIENT_?KEY|ACCESS_?KEY"
    r"|PASSWORD|PASSWD|SECRET|CREDENTIALS?)[A-Z0-9_]*|[A-Z0-9_]*TOKEN"
)

_SECRET_RULES: tuple[Rule, ...] = (
    Rule(
        "private_key",
        r"(?s)-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----|$)"
        r"|(?s)PuTTY-User-Key-File-[23]:.*?(?:Private-MAC:[^\n]*|$)",
        "detect-secrets PrivateKeyDetector",
    ),
    Rule(
        "aws_access_key",
        r"\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}\b",
        "detect-secrets AWSKeyDetector",
    ),
    Rule(
        "aws_secret_key",
        r"(?i)(aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?['\"])[0-9a-zA-Z/+]{40}(['\"])",
        "detect-secrets AWSKeyDetector",
        before=1,
        after=2,
    ),
    Rule(
        "azure_storage_key", r"(AccountKey=)[a-zA-Z0-9+/=]{88}", "detect-secrets AzureStorageKeyDetector", 1
    ),
    Rule(
        "url_password",
        r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#\[\]@!$&'()*+,;=]+:)[^\s:/?#\[\]@!$&'()*+,;=]+(@)",
        "detect-secrets BasicAuthDetector (postgres://, mysql://, redis://, https://, ...)",
        before=1,
        after=2,
    ),
    Rule(
        "github_token",
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}",
        "detect-secrets GitHubTokenDetector; github_pat_: compound",
    ),
    Rule(
        "gitlab_token",
        r"\b(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_\-]{20,}"
        r"|\bGR1348941[A-Za-z0-9_\-]{20,}",
        "detect-secrets GitLabTokenDetector",
    ),
    Rule(
        "slack_token",
        r"(?i)\bxox[abposr]-(?:\d+-)+[a-z0-9]+|(?i)https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+",
        "detect-secrets SlackDetector",
    ),
    Rule("stripe_key", r"\b[rs]k_live_[0-9a-zA-Z]{24,}", "detect-secrets StripeDetector"),
    Rule("twilio_key", r"\b(?:AC|SK)[a-z0-9]{32}\b", "detect-secrets TwilioKeyDetector"),
    Rule("sendgrid_key", r"\bSG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}", "detect-secrets SendGridDetector"),
    Rule("mailchimp_key", r"\b[0-9a-z]{32}-us[0-9]{1,2}\b", "detect-secrets MailchimpDetector"),
    Rule(
        "npm_token",
        r"(:_authToken=)\S+|\bnpm_[A-Za-z0-9]{36}\b",
        "detect-secrets NpmDetector; npm_ tokens on their own: compound",
        before=1,
    ),
    Rule("pypi_token", r"\bpypi-AgE[A-Za-z0-9_-]{70,}", "detect-secrets PypiTokenDetector"),
    Rule(
        "discord_token",
        r"\b[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27,}",
        "detect-secrets DiscordBotTokenDetector",
    ),
    Rule("telegram_token", r"\b\d{8,10}:[0-9A-Za-z_-]{35}\b", "detect-secrets TelegramBotTokenDetector"),
    Rule("square_oauth", r"\bsq0csp-[0-9A-Za-z\\\-_]{43}", "detect-secrets SquareOAuthDetector"),
    Rule("artifactory_token", r"\bAKC[a-zA-Z0-9]{10,}", "detect-secrets ArtifactoryDetector"),
    Rule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{10,}={0,2}\.eyJ[A-Za-z0-9_-]{10,}={0,2}\.[A-Za-z0-9_.+/=-]*",
        "detect-secrets JwtTokenDetector",
    ),
    Rule("anthropic_key", r"\bsk-ant-[a-z]+[0-9]*-[A-Za-z0-9_\-]{20,}", "compound"),
    Rule(
        "openai_key",
        r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}"
        r"|\bsk-[A-Za-z0-9_-]*[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{40,}\b",
        "detect-secrets OpenAIDetector; project, service-account and admin keys: compound",
    ),
    Rule("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}", "compound"),
    Rule("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", "compound"),
    Rule(
        "bearer_token",
        r"(?i)(\bauthorization\s*[:=]\s*[\"']?bearer\s+)[A-Za-z0-9\-._~+/]{12,}=*",
        "compound",
        before=1,
    ),
    Rule(
        "api_key_header", r"(?i)(\bx-api-key\s*[:=]\s*[\"']?)[A-Za-z0-9\-._~+/]{12,}=*", "compound", before=1
    ),
    *(
        Rule(
            "secret_keyword",
            _ASSIGNED.format(q=quote) + _VALUE.format(q=quote),
            "detect-secrets KeywordDetector (quotes required)",
            before=1,
            after=3,
        )
        for quote in ('"', "'", "`")
    ),
    Rule(
        "env_secret",
        r"(?m)^(\s*(?:export\s+)?(?:" + _ENV_KEYWORDS + r")\s*=\s*)\d*[^\s\"'`$<{#\[\d.][^\s\"'`#]{2,}",
        "compound (.env lines: NAME_TOKEN=..., DB_PASSWORD=...)",
        before=1,
    ),
)

_PII_RULES: tuple[Rule, ...] = (
    Rule("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", "compound"),
    Rule(
        "phone",
        r"(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b",
        "compound",
    ),
    Rule(
        "ip_address",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        "compound",
    ),
    Rule(
        "home_user",
        r"((?:/Users/|/home/|[A-Za-z]:\\\\Users\\\\|[A-Za-z]:\\Users\\))[^/\\\s\"']+",
        "compound",
        before=1,
    ),
)


def _spellings(*cores: str) -> tuple[str, ...]:
    """What code spells a keyword as: ``api_key``, ``Api_key``, ``API_KEY``, ``apiKey``,
    ``ApiKey``. Whole words: a literal that starts with a rare byte is found faster."""
    found: list[str] = []
    for core in cores:
        words = core.split("_")
        camel = words[0] + "".join(word.capitalize() for word in words[1:])
        for spelling in (core, core.capitalize(), core.upper(), camel, camel[:1].upper() + camel[1:]):
            if spelling not in found:
                found.append(spelling)
    return tuple(found)


#: The keywords' spellings: long enough to flag few texts ("riv" or "database" alone
#: would flag most of them).
_KEYWORD_LITERALS = _spellings(
    "password", "passwd", "pwd", "secret", "api_key", "apikey", "auth_key", "service_key", "account_key",
    "db_key", "database_key", "priv_key", "private_key", "client_key", "db_pass", "database_pass",
    "key_pass", "contrase",
)  # fmt: skip


#: Per rule, strings a text must hold for the rule to match in it (see ``Rule.literals``).
_LITERALS: dict[str, tuple[str, ...]] = {
    "private_key": ("PRIVATE KEY", "PuTTY-User-Key-File"),
    "aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
    "aws_secret_key": _spellings("aws"),
    "azure_storage_key": ("AccountKey=",),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab_token": (
        "glpat-",
        "gldt-",
        "glft-",
        "glsoat-",
        "glrt-",
        "glcbt-",
        "glimt-",
        "glptt-",
        "glagent-",
        "gloas-",
        "GR1348941",
    ),
    "slack_token": ("xox", "XOX", "Xox", "hooks.slack.com", "HOOKS.SLACK.COM"),
    "stripe_key": ("k_live_",),
    "sendgrid_key": ("SG.",),
    "mailchimp_key": ("-us",),
    "npm_token": (":_authToken=", "npm_"),
    "pypi_token": ("pypi-AgE",),
    "square_oauth": ("sq0csp-",),
    "artifactory_token": ("AKC",),
    "jwt": ("eyJ",),
    "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",),
    "huggingface_token": ("hf_",),
    "google_api_key": ("AIza",),
    "bearer_token": ("uthorization", "UTHORIZATION"),
    "api_key_header": ("x-api-key", "X-API-Key", "X-Api-Key", "X-API-KEY"),
    "secret_keyword": _KEYWORD_LITERALS,
    "env_secret": ("KEY", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "TOKEN"),
    "email": ("@",),
    "home_user": ("/Users/", "/home/", ":\\Users\\"),
}
SECRET_RULES = tuple(replace(rule, literals=_LITERALS.get(rule.name)) for rule in _SECRET_RULES)
PII_RULES = tuple(replace(rule, literals=_LITERALS.get(rule.name)) for rule in _PII_RULES)


@cache
def rules_for(mode: str) -> tuple[Rule, ...]:
    """The rules of a ``--scrub`` mode."""
    if mode not in SCRUB_MODES:
        raise ValueError(f"scrub must be one of {SCRUB_MODES}, not {mode!r}")
    if mode == "none":
        return ()
    return SECRET_RULES + (PII_RULES if "pii" in mode else ())


#: Flags of a rule's inline modifiers, for Hyperscan (which takes them apart).
_HS_FLAGS = {
    "(?i)": hyperscan.HS_FLAG_CASELESS,
    "(?s)": hyperscan.HS_FLAG_DOTALL,
    "(?m)": hyperscan.HS_FLAG_MULTILINE,
}


@cache
def _gate(rules: tuple[Rule, ...]) -> hyperscan.Database:
    """One Hyperscan database of every rule's literals and of the rules without any,
    which finds, in one pass over a column's bytes, the texts that may hold a secret.

    Word boundaries are left out (the texts are scanned end to end, so a text's first
    token follows the last byte of the one before): the test may flag a text too many,
    never one too few; the polars regexes decide what is replaced."""
    expressions: list[bytes] = []
    flags: list[int] = []
    for literal in sorted({literal for rule in rules for literal in rule.literals or ()}):
        expressions.append(re.escape(literal).encode())
        flags.append(0)
    for rule in rules:
        if rule.literals is not None:
            continue
        pattern = rule.pattern.replace(r"\b", "")
        flag = 0
        for modifier, bit in _HS_FLAGS.items():
            if modifier in pattern:
                pattern, flag = pattern.replace(modifier, ""), flag | bit
        expressions.append(pattern.encode())
        flags.append(flag)
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(
        expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
    )
    return database


def compile_test(rules: tuple[Rule, ...]) -> None:
    """Compile the test of whether a text may hold a secret now (it is compiled once, on
    first use, and the compilation releases the GIL: a thread may do it ahead)."""
    if rules:
        _gate(rules)


_scratches = threading.local()


def _scratch(database: hyperscan.Database) -> hyperscan.Scratch:
    """This thread's scratch space for the database (a scan needs one of its own: the
    reader threads scan at the same time)."""
    scratches: dict[int, hyperscan.Scratch] = _scratches.__dict__.setdefault("by_database", {})
    if id(database) not in scratches:
        scratches[id(database)] = hyperscan.Scratch(database)
    return scratches[id(database)]


def suspects(texts: pl.Series, rules: tuple[Rule, ...]) -> pl.Series:
    """Which texts may hold a secret: the column's bytes in one Hyperscan pass, each match
    placed in its text by the Arrow offsets (null: false)."""
    found = np.zeros(len(texts), dtype=np.bool_)
    column = texts.rechunk().to_arrow().cast(pa.large_string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    _, offsets_buffer, data = column.buffers()
    if rules and data is not None and len(texts):
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
            column.offset : column.offset + len(column) + 1
        ]
        ends: list[int] = []
        database = _gate(rules)
        buffer = cast("bytes", memoryview(data))  # scanned where Arrow keeps it, not copied
        database.scan(
            buffer,
            match_event_handler=lambda _id, _start, end, _flags, _context: ends.append(end),
            scratch=_scratch(database),
        )
        if ends:
            rows = np.searchsorted(offsets, np.asarray(ends, dtype=np.int64) - 1, side="right") - 1
            found[rows[(rows >= 0) & (rows < len(texts))]] = True
    return pl.Series(texts.name, found) & texts.is_not_null()


def may_hold(text: pl.Expr, rules: tuple[Rule, ...]) -> pl.Expr:
    """Whether a rule may match somewhere in the text (false when there are no rules).

    Hyperscan (Intel's multi-pattern regex engine, its vectorscan fork on other CPUs)
    runs every test over a column's bytes at once; polars, a regex at a time, took five
    times as long (seven passes of about 1 GB/s each, and a cost per text)."""
    if not rules:
        return pl.lit(value=False)
    return text.map_batches(lambda texts: suspects(texts, rules), return_dtype=pl.Boolean)


def scrubbed(text: pl.Expr, rules: tuple[Rule, ...]) -> pl.Expr:
    """The text with every match of every rule replaced by its placeholder, rule by rule
    in order (a private key block first, so that nothing inside it is matched again)."""
    for rule in rules:
        text = text.str.replace_all(rule.regex, rule.replacement)
    return text


def redactions(text: pl.Expr) -> pl.Expr:
    """How many placeholders a scrubbed text holds."""
    return text.str.count_matches(PLACEHOLDER_PATTERN).fill_null(0).cast(pl.Int32)


def redacted_rules(text: pl.Expr) -> pl.Expr:
    """The rule of each placeholder in a scrubbed text, as a list."""
    return text.str.extract_all(PLACEHOLDER_PATTERN).list.eval(
        pl.element().str.slice(10).str.strip_suffix("]")
    )


def _on_suspects(frame: pl.LazyFrame, suspect: pl.Expr, fixes: dict[str, pl.Expr]) -> pl.LazyFrame:
    """``frame`` with each of ``fixes`` computed on the rows where ``suspect`` holds only
    (null elsewhere), joined back by position: a scrub costs the suspect rows alone."""
    indexed = frame.with_row_index("_row")
    fixed = indexed.filter(suspect).select("_row", *(expr.alias(name) for name, expr in fixes.items()))
    return indexed.join(fixed, on="_row", how="left", maintain_order="left").drop("_row")


def scrub_columns(frame: pl.LazyFrame, columns: list[str], rules: tuple[Rule, ...]) -> pl.LazyFrame:
    """``frame`` with the texts of ``columns`` scrubbed, on the rows where one of them may
    hold a secret."""
    if not rules or not columns:
        return frame
    suspect = pl.any_horizontal([may_hold(pl.col(name), rules) for name in columns])
    fixes = {f"{name}_scrubbed": scrubbed(pl.col(name), rules) for name in columns}
    return (
        _on_suspects(frame, suspect, fixes)
        .with_columns(pl.coalesce(f"{name}_scrubbed", name).alias(name) for name in columns)
        .drop(*fixes)
    )


def scrub_candidates(candidates: pl.LazyFrame, rules: tuple[Rule, ...], head_chars: int) -> pl.LazyFrame:
    """Candidates (with ``prompt``, ``response``, ``terse``, ``rich`` and their heads) with
    what the job writes of them scrubbed: ``prompt_head`` and ``response_head`` in place
    (cut from the scrubbed texts, so that no secret is cut in two), ``terse_scrubbed`` and
    ``rich_scrubbed`` beside the originals (null where nothing changed: the pair's id and
    dedup key are the original texts'), and ``redactions``, the secrets in its prompt and
    response. Filters and keys are decided before, on the original texts."""
    if not rules:
        return candidates.with_columns(
            pl.lit(None, pl.String).alias("terse_scrubbed"),
            pl.lit(None, pl.String).alias("rich_scrubbed"),
            pl.lit(0, pl.Int32).alias("redactions"),
        )
    suspect = may_hold(pl.col("prompt"), rules) | may_hold(pl.col("response"), rules)
    fixes = {
        "terse_scrubbed": scrubbed(pl.col("terse"), rules),
        "rich_scrubbed": scrubbed(pl.col("rich"), rules),
        "prompt_head_scrubbed": scrubbed(pl.col("prompt"), rules).str.slice(0, head_chars),
        "response_head_scrubbed": scrubbed(pl.col("response"), rules).str.slice(0, head_chars),
    }
    return (
        _on_suspects(candidates, suspect, fixes)
        .with_columns(
            pl.coalesce("prompt_head_scrubbed", "prompt_head").alias("prompt_head"),
            pl.coalesce("response_head_scrubbed", "response_head").alias("response_head"),
            (redactions(pl.col("terse_scrubbed")) + redactions(pl.col("rich_scrubbed"))).alias("redactions"),
        )
        .drop("prompt_head_scrubbed", "response_head_scrubbed")
    )


def scrub_names(frame: pl.DataFrame, columns: list[str], rules: tuple[Rule, ...]) -> pl.DataFrame:
    """``frame`` with the names in ``columns`` (session ids, models, tool names) scrubbed.
    A name repeats on every message of its session, so each distinct one is looked at
    once, and the frame is left as it is when none may hold a secret."""
    if not rules:
        return frame
    for name in columns:
        values = frame.get_column(name).unique().drop_nulls().to_frame()
        suspect = values.filter(may_hold(pl.col(name), rules))[name]
        if len(suspect):
            fixed = suspect.to_frame().select(scrubbed(pl.col(name), rules))[name]
            frame = frame.with_columns(pl.col(name).replace(suspect, fixed))
    return frame
