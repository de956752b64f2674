"""Validation of every user-supplied string that ends up in generated C, and the mapping of
CSV column names to the C identifiers the channels take."""

import re
import unicodedata

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


def check_model_name(name: str,
                     fix: str = "pass another one with --name, e.g. --name sensors") -> str:
    check_identifier(name, "model name", fix)
    for header in generated_headers(name):
        taken = headers.origin(header)
        if taken:
            raise UserError(
                f"model name {name!r} gives the header {header}, the name of a header of {taken} "
                f"(compared without case, as macOS and Windows compare file names): on a "
                f"build's include path it would replace that header; {fix}")
    return name


def check_channel_names(names: list[str],
                        fix: str = "rename the CSV header or choose other columns with --columns"
                        ) -> list[str]:
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


def c_identifier_for(column: str, index: int) -> str:
    """The C identifier a CSV column name maps to: accents dropped, every run of other
    characters an underscore ('Flow rate (l/min)' -> Flow_rate_l_min); a name that would
    start with a digit gets 'c_' before it, one that is reserved a '_' after it, one with
    nothing left is channel_<index>.  A name that is already an identifier stays itself."""
    plain = unicodedata.normalize("NFKD", column).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "_", plain).strip("_")[:MAX_LENGTH]
    if not name:
        return f"channel_{index}"
    if name[0].isdigit():
        name = f"c_{name}"[:MAX_LENGTH]
    if name.lower().startswith("mcua"):
        name = f"ch_{name}"[:MAX_LENGTH]
    if name in _RESERVED:
        name += "_"
    return name


def map_channel_names(columns: list[str], renames: dict[str, str]) -> list[str]:
    """A unique C identifier per column (check_channel_names holds for the result): the one
    renames gives (checked, never changed), else c_identifier_for's.  Names given by renames
    and columns that map to themselves are placed first; where another column would give the
    same macro it gets _2, _3, ... after its name.  A rename naming no column is refused."""
    unknown = [old for old in renames if old not in columns]
    if unknown:
        raise UserError(f"--rename {unknown[0]!r}=... names no column of the data; its columns "
                        f"are {', '.join(map(repr, columns))}")
    fix = "choose another name with --rename OLD=NEW"
    names = {old: check_identifier(new, f"--rename {old!r}= name", fix)
             for old, new in renames.items()}
    mapped = {c: c_identifier_for(c, i) for i, c in enumerate(columns) if c not in names}
    taken = {}
    for column, name in names.items():
        if name.upper() in taken:
            raise UserError(f"--rename gives {taken[name.upper()]!r} and {column!r} the same "
                            f"C macro {name.upper()}; {fix}")
        taken[name.upper()] = column
    for column in (c for c in mapped if mapped[c] == c and c.upper() not in taken):
        taken[column.upper()] = column
        names[column] = column
    for column in columns:
        if column in names:
            continue
        base, n = mapped[column], 2
        name = base
        while name.upper() in taken:
            suffix = f"_{n}"
            name, n = base[:MAX_LENGTH - len(suffix)] + suffix, n + 1
        taken[name.upper()] = column
        names[column] = name
    return check_channel_names([names[c] for c in columns], fix)
