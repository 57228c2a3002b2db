"""Python's text semantics as vectorized polars expressions.

The reference harvester counts words with ``str.split()`` (``transforms.words``), trims
with ``str.strip()`` and rounds ratios with ``round(x, 2)``. Each differs from the
obvious polars spelling: Python's whitespace is not regex ``\\s`` (it adds
U+001C..U+001F), and ``round`` rounds the exact binary value half-to-even, which
``(x * 100).round() / 100`` does not.
"""

from __future__ import annotations

import polars as pl

#: Every character for which ``str.isspace()`` is true (29 of them; a test checks the
#: running Python agrees). Spelled out: finding them takes 40 ms at every start.
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


_WHITESPACE_CHARACTERS = list(PY_WHITESPACE)
#: Past one text (not null) in this many with whitespace at an end, the whole column is
#: stripped.
STRIP_ALL_WHEN_PADDED = 8


def strip_series(texts: pl.Series) -> pl.Series:
    """``text.strip()`` of each text. Only the texts that begin or end with whitespace
    are stripped: polars' strip writes every string out anew, and a column of texts
    mostly needs none (the responses of a batch of the 1 GB bench archive, 17.7 MB:
    12 ms of CPU stripped whole, 5 ms so)."""
    padded = texts.str.head(1).is_in(_WHITESPACE_CHARACTERS) | texts.str.tail(1).is_in(_WHITESPACE_CHARACTERS)
    rows = padded.arg_true()
    if rows.is_empty():
        return texts
    if (
        len(rows) > (len(texts) - texts.null_count()) // STRIP_ALL_WHEN_PADDED
    ):  # putting many back costs more than it saves
        return texts.str.strip_chars(PY_WHITESPACE)
    # scatter writes into the series it is called on: a copy, so that the caller's stays whole
    return texts.clone().scatter(rows, texts.gather(rows).str.strip_chars(PY_WHITESPACE))


def py_strip(text: pl.Expr) -> pl.Expr:
    """``text.strip()``."""
    return text.map_batches(strip_series, return_dtype=pl.String)


def py_round_ratio_2(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``round(numerator / denominator, 2)`` for non-negative integers, bit for bit.

    Python rounds the double ``r = numerator / denominator`` to the nearest multiple of
    0.01 by its exact binary value. Away from a tie (the rational exactly halfway between
    two hundredths) the rational and its double fall on the same side, so integer
    arithmetic decides. At a tie the double sits just above or below the halfway point
    (or on it, when the halfway point is a dyadic rational, and then half-to-even applies);
    Dekker's exact product tells which side.
    """
    num = numerator.cast(pl.Int64)
    den = denominator.cast(pl.Int64)
    k = (num * 100) // den
    twice_k_plus_1 = 2 * k + 1
    side = num * 200 - twice_k_plus_1 * den  # sign of (rational - halfway point)

    r = num.cast(pl.Float64) / den.cast(pl.Float64)
    product = r * 200.0
    split = r * 134217729.0  # Veltkamp split: r == r_hi + r_lo exactly
    r_hi = split - (split - r)
    r_lo = r - r_hi
    product_error = (r_hi * 200.0 - product) + r_lo * 200.0  # 200*r == product + error
    double_side = (product - twice_k_plus_1.cast(pl.Float64)) + product_error

    rounds_up = (
        pl.when(side > 0)
        .then(True)
        .when(side < 0)
        .then(False)
        .when(twice_k_plus_1 % 25 == 0)  # halfway point is exactly representable
        .then(k % 2 == 1)
        .otherwise(double_side > 0)
    )
    return _hundredths_to_float(k + rounds_up.cast(pl.Int64))


def _hundredths_to_float(hundredths: pl.Expr) -> pl.Expr:
    """The double nearest to ``hundredths / 100``, as Python's ``round`` returns it.

    Spelled as a decimal string and parsed, as CPython does: polars rewrites a division
    by the literal 100.0 into a multiplication by 0.01, which is not correctly rounded.
    """
    digits = hundredths.cast(pl.String).str.zfill(3)
    return pl.concat_str(digits.str.head(-2), pl.lit("."), digits.str.tail(2)).cast(pl.Float64)
