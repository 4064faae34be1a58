"""The Dutch catalogue (``checks/locale/nl.po``, gettext's format, read with polib: no compiled ``.mo`` to
build or to go stale) and the lookups through it, argparse's own messages included (``argparse_in``)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import string
import threading
from collections.abc import Iterator

CATALOGUE_DIR = os.path.join(os.path.dirname(__file__), "locale")
LANGUAGES = ("en", "nl")
# nl.po is some 60 KB; a catalogue far past that is not ours, and parsing it would outlast -t.
CATALOGUE_LIMIT = 1 << 20
# The placeholders of a msgid: str.format fields and printf conversions (argparse's messages).
PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]")


def placeholders(text: str) -> tuple[list[str], list[str]] | None:
    """The fields a template fills, or None when it is no valid str.format template."""
    try:
        fields = sorted(field for _, field, _, _ in string.Formatter().parse(text) if field is not None)
    except ValueError:
        return None
    return fields, sorted(PRINTF.findall(text))


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid -> translation for ``lang``; English, the source language, has none. Read once a process, and
    only when Dutch is asked for (polib is imported then). A translation whose placeholders differ from
    its msgid's is left out: its English beats a KeyError in place of a verdict."""
    if lang not in LANGUAGES or lang == "en":
        return {}
    from . import safefile  # it needs checks.messages, which needs this module: imported when Dutch is asked for

    try:
        import polib

        text = safefile.read(os.path.join(CATALOGUE_DIR, f"{lang}.po"), CATALOGUE_LIMIT).decode()
        entries = polib.pofile(text)
    except (ImportError, OSError, ValueError, safefile.Refused):  # a damaged install: English beats a traceback
        return {}
    return {entry.msgid: entry.msgstr for entry in entries
            if entry.translated() and not entry.obsolete and placeholders(entry.msgid) == placeholders(entry.msgstr)}


def translate(text: str, lang: str) -> str:
    """``text`` (a msgid) in ``lang``, or as it is when the catalogue does not know it."""
    return catalogue(lang).get(text, text)


ARGPARSE_SWAP = threading.RLock()


@contextlib.contextmanager
def argparse_in(lang: str) -> Iterator[None]:
    """argparse's own messages (it writes them through ``gettext``, bound as ``argparse._`` and
    ``argparse.ngettext``) from this catalogue while a parse runs. argparse has no other hook for a
    catalogue of the caller's; the names are put back afterwards."""
    with ARGPARSE_SWAP:  # one parse at a time: two overlapping swaps would put back each other's
        if lang == "en":
            yield
            return
        names = vars(argparse)
        saved = {"_": names["_"], "ngettext": names["ngettext"]}

        def plural(singular: str, plural: str, count: int) -> str:
            return translate(singular if count == 1 else plural, lang)

        names.update({"_": functools.partial(translate, lang=lang), "ngettext": plural})
        try:
            yield
        finally:
            names.update(saved)
