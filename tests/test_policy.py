"""The policy reader: the two options, missing ones, and no crash on any input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.evidence.policy import PolicyError, parse

POLICY = (b"<config><agent><driver><protmode><file>1</file></protmode></driver>"
          b"<nfm><enable>0</enable></nfm></agent></config>")


def test_options() -> None:
    facts = parse(POLICY, "/p.xml")
    assert facts.file_monitoring is True
    assert facts.device_flow_correlation is False


@pytest.mark.parametrize("value", [b"", b"yes", b" 2 "])
def test_unclear_values_are_unknown(value: bytes) -> None:
    data = b"<config><agent><driver><protmode><file>" + value + b"</file></protmode></driver></agent></config>"
    assert parse(data, "/p.xml").file_monitoring is None


def test_entities_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><config>&a;</config>'
    with pytest.raises(PolicyError, match="entities"):
        parse(bomb, "/p.xml")


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_policy_error(data: bytes) -> None:
    with contextlib.suppress(PolicyError):
        parse(data, "/p.xml")


@given(st.sampled_from(["0", "1", "", "x"]), st.sampled_from(["0", "1", "", "x"]))
def test_generated_policies(file_value: str, nfm_value: str) -> None:
    data = (f"<config><agent><driver><protmode><file>{file_value}</file></protmode></driver>"
            f"<nfm><enable>{nfm_value}</enable></nfm></agent></config>").encode()
    facts = parse(data, "/p.xml")
    assert facts.file_monitoring == {"0": False, "1": True}.get(file_value)
    assert facts.device_flow_correlation == {"0": False, "1": True}.get(nfm_value)
