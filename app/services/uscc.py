"""GB 32100-2015 unified social credit code (统一社会信用代码): 18 characters, the last a check character."""

from __future__ import annotations

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(CHARSET)}


def check_character(first17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """None when ``code`` is well formed with a correct check character, else what is wrong."""
    if len(code) != 18:
        return "a unified social credit code has 18 characters"
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        return f"characters not allowed in a unified social credit code: {''.join(bad)}"
    if not code[2:8].isdigit():
        return "characters 3-8 of a unified social credit code are the 6-digit region code"
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r} but GB 32100 gives {expected!r} for the first 17 characters"
    return None


def is_check_failure(code: str) -> bool:
    """Well formed, only the check character is off (the pilot-area case an admin may accept)."""
    msg = problem(code)
    return msg is not None and msg.startswith("check character")


def make(first17: str) -> str:
    """A valid code from its first 17 characters (demo data, tests)."""
    return first17 + check_character(first17)


def could_begin(prefix: str) -> bool:
    """Some stored code could start with ``prefix`` (every stored code is well formed but for its
    check character): a search need not look at codes for a name fragment like '丰源化工'."""
    return len(prefix) <= 18 and all(c in _VALUE for c in prefix)
