"""Development check: our Dutch texts are our own words, not sentences of Cisco's fault tables.

The fault tables (Dutch) lie in the project's shared folder, beside a checkout, not in the repository:
``.ci/run`` runs this when that folder is there. Usage: python3 .ci/seed_copies.py SEED_FOLDER

Every msgstr of checks/locale/nl.po is checked (the faults' meanings and fixes among them). The catalogue
is read line by line here, not with polib: this runs on the CI machine's own python3, before any
environment with the project's dependencies exists.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parents[1] / "checks" / "locale" / "nl.po"
SPAN = 7  # a run of this many words in a row, found in a seed, is a copy


def words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ0-9]+", text.lower())


def translations(po: str) -> list[str]:
    """The msgstr texts of a catalogue: a ``msgstr "..."`` line and the quoted lines that continue it."""
    found: list[str] = []
    current: list[str] | None = None
    for line in po.splitlines():
        if line.startswith('msgstr "'):
            current = [ast.literal_eval(line[len("msgstr "):])]
            found.append("")
        elif current is not None and line.startswith('"'):
            current.append(ast.literal_eval(line))
        else:
            current = None
        if current is not None:
            found[-1] = "".join(current)
    return [text for text in found if text]


def copies(seed_text: str) -> list[str]:
    """Every run of SPAN words of a Dutch text that also stands in the seed text."""
    haystack = f" {' '.join(words(seed_text))} "
    found = []
    for text in translations(CATALOGUE.read_text(encoding="utf-8")):
        said = words(text)
        for start in range(len(said) - SPAN + 1):
            run = " ".join(said[start:start + SPAN])
            if f" {run} " in haystack:
                found.append(f"{text[:60]!r} copies: {run!r}")
    return found


def main() -> int:
    folder = Path(sys.argv[1])
    seed_text = " ".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt")))
    if len(seed_text) < 1000:
        print(f"seed_copies: no seed documents in {folder}", file=sys.stderr)
        return 1
    found = copies(seed_text)
    print("\n".join(found) or f"seed_copies: no Dutch text copies {folder}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
