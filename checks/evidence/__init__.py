"""Evidence: facts read from the host, one module per source, no verdicts."""


def ascii_number(text: str, digits: int) -> bool:
    """Whether ``text`` is 1 to ``digits`` ASCII digits (``str.isdigit`` alone takes other scripts' digits).

    A plain test rather than a regular expression: compiling one costs a plugin run some 0.1 ms.
    """
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def version_tuple(text: str) -> tuple[int, ...]:
    """'1.14.1.123' -> (1, 14, 1, 123); stops at the first part that is not a number."""
    parts: list[int] = []
    for part in text.strip().split("."):
        if not ascii_number(part, 9):
            break
        parts.append(int(part))
    return tuple(parts)
