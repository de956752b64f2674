"""Validation of every user-supplied string that ends up in generated C."""

import re

from codegen.emit import headers
from codegen.errors import UserError

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
MAX_LENGTH = 40

# C99, C11 and C++11 keywords, plus names a firmware build already uses.
_RESERVED = set(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic
    _Noreturn _Static_assert _Thread_local alignas alignof and and_eq asm bitand bitor bool catch
    char16_t char32_t class compl constexpr const_cast decltype delete dynamic_cast explicit export
    false friend mutable namespace new noexcept not not_eq nullptr operator or or_eq private
    protected public reinterpret_cast static_assert static_cast template this thread_local throw
    true try typeid typename using virtual wchar_t xor xor_eq main setup loop NULL""".split()
)


def check_identifier(name: str, what: str, fix: str) -> str:
    """Return name if it is safe as (part of) a C/C++ identifier, else raise UserError."""
    shown = repr(name)
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UserError(
            f"{what} {shown} is not a C identifier (letters, digits and '_', starting with a "
            f"letter); {fix}"
        )
    if len(name) > MAX_LENGTH:
        raise UserError(f"{what} {shown} is longer than {MAX_LENGTH} characters; {fix}")
    if name in _RESERVED or name.lower().startswith("mcua"):
        raise UserError(f"{what} {shown} is reserved in C, C++ or the mcua_ runtime; {fix}")
    return name


def generated_headers(name: str) -> list[str]:
    """The headers `generate` names after the model (codegen/emit/render.py)."""
    from codegen.detectors import NAMES  # the registry imports modules that import this one

    return [f"{name}.h", f"{name}_channels.h", *(f"{name}_{d}.h" for d in NAMES)]


def check_model_name(name: str) -> str:
    fix = "pass another one with --name, e.g. --name sensors"
    check_identifier(name, "model name", fix)
    for header in generated_headers(name):
        taken = headers.origin(header)
        if taken:
            raise UserError(
                f"model name {name!r} gives the header {header}, the name of a header of {taken} "
                f"(compared without case, as macOS and Windows compare file names): on a "
                f"build's include path it would replace that header; {fix}")
    return name


def check_channel_names(names: list[str]) -> list[str]:
    fix = "rename the CSV header or choose other columns with --columns"
    seen: dict[str, str] = {}
    for name in names:
        check_identifier(name, "column name", fix)
        upper = name.upper()
        if upper in seen:
            raise UserError(
                f"column names {seen[upper]!r} and {name!r} give the same C macro {upper}; {fix}"
            )
        seen[upper] = name
    return names
