"""Evidence: facts read from the host, one module per source, no verdicts."""


def ascii_number(text: str, digits: int) -> bool:
    """Whether ``text`` is 1 to ``digits`` ASCII digits (``str.isdigit`` alone takes other scripts' digits).

    A plain test rather than a regular expression: compiling one costs a plugin run some 0.1 ms.
    """
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def lines(text: str) -> list[str]:
    """The lines of a host's file or a program's output: split at "\\n" only (a "\\r" before it dropped).

    ``str.splitlines`` also splits at U+2028, U+0085, form feeds and more, so a value holding one
    (a policy name, an os-release NAME) would become a line of its own and could pose as a field or a
    fault line; the files and programs read here end their lines with "\\n".
    """
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def version_tuple(text: str) -> tuple[int, ...]:
    """'1.14.1.123' -> (1, 14, 1, 123); stops at the first part that is not a number."""
    parts: list[int] = []
    for part in text.strip().split("."):
        if not ascii_number(part, 9):
            break
        parts.append(int(part))
    return tuple(parts)
