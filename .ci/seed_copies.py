"""Development check: the catalogue's Dutch texts are our own words, not sentences of Cisco's fault tables.

The fault tables (Dutch) lie in the project's shared folder, beside a checkout, not in the repository:
``.ci/run`` runs this when that folder is there. Usage: python3 .ci/seed_copies.py SEED_FOLDER
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks import catalog  # after the path to the checkout is set

SPAN = 7  # a run of this many words in a row, found in a seed, is a copy


def words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ0-9]+", text.lower())


def copies(seed_text: str) -> list[str]:
    """Every run of SPAN words of a fault's Dutch meaning or fix that also stands in the seed text."""
    haystack = f" {' '.join(words(seed_text))} "
    found = []
    for fault in catalog.FAULTS:
        for text in (fault.meaning.nl, fault.fix.nl):
            said = words(text)
            for start in range(len(said) - SPAN + 1):
                run = " ".join(said[start:start + SPAN])
                if f" {run} " in haystack:
                    found.append(f"fault {fault.id} copies: {run!r}")
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
