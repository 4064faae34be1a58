"""Each demo host's outputs are exactly the golden ones (``tests/golden.py`` says how to regenerate them)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests import golden


@pytest.mark.parametrize("host", sorted(path.name for path in golden.GOLDEN.iterdir()))
def test_outputs_match_the_golden_files(tmp_path: Path, host: str) -> None:
    roots = golden.build(tmp_path)
    assert sorted(roots) == sorted(path.name for path in golden.GOLDEN.iterdir()), "a demo host without golden files"
    for name, text in golden.outputs(roots[host]).items():
        kept = (golden.GOLDEN / host / name).read_text()
        diff = "".join(difflib.unified_diff(kept.splitlines(True), text.splitlines(True), f"golden/{host}/{name}",
                                            "now"))
        assert not diff, f"outputs changed; if meant, run .venv/bin/python -m tests.golden\n{diff}"


def test_masking_keeps_what_does_not_vary() -> None:
    text = ('secure_endpoint_fault_active{id="7"} 1\nsecure_endpoint_evaluation_duration_seconds 0.0071\n'
            '  "evaluated_at": 1796623156.982,\n  "duration_seconds": 4.1e-05,\n  "state": "clear",\n'
            'x | definitions_age=7202s;604800;;0\n'
            'build_info{pythonversion="3.9.18",version="0.1.0"} 1.0\n')
    assert golden.mask(text) == ('secure_endpoint_fault_active{id="7"} 1\n'
                                 'secure_endpoint_evaluation_duration_seconds <varies>\n'
                                 '  "evaluated_at": <varies>,\n  "duration_seconds": <varies>,\n  "state": "clear",\n'
                                 'x | definitions_age=<varies>;604800;;0\n'
                                 'build_info{pythonversion="<varies>",version="0.1.0"} 1.0\n')
