"""C literals for generated code."""

import numpy as np

from codegen.errors import UserError


def c_float(value) -> str:
    """A C float literal that parses back to exactly this float32 (shortest form, f suffix)."""
    f = np.float32(value)
    if not np.isfinite(f):
        raise UserError(f"a model constant is {f}; retrain: constants must be finite")
    text = str(f)
    if "." not in text and "e" not in text:
        text += ".0"
    assert np.float32(text).tobytes() == f.tobytes(), text
    return text + "f"


def c_int(v: int) -> str:
    """A C literal of an int32 value; INT32_MIN as an expression (2147483648 alone would be
    a wider type)."""
    v = int(v)
    if v == -2**31:
        return "(-2147483647 - 1)"
    return str(v)


def c_comment(text) -> str:
    """Text from a bundle for inside a /* */ comment: printable ASCII only (no newline that
    could end a // line or start a directive), and never the comment's end or a nested
    start (which -Wcomment reports)."""
    printable = "".join(ch if " " <= ch <= "~" else "?" for ch in str(text))
    return printable.replace("*/", "*?").replace("/*", "/?")
