"""The policy reader: the two options, missing ones, and no crash on any input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks.evidence.policy import PolicyError, parse
from tests.hosttree import XMLDSIG, policy_document

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


# -- the real shape: an XML-Signature document, every element in the xmldsig namespace -------------
def test_signed_policy_in_the_xmldsig_namespace() -> None:
    facts = parse(policy_document(file_monitoring=True, device_flow=False).encode(), "/p.xml")
    assert (facts.file_monitoring, facts.device_flow_correlation) == (True, False)
    assert facts.name == "Protect Policy for Linux"


def test_bare_config_still_reads() -> None:
    facts = parse(policy_document(file_monitoring=False, device_flow=True, signed=False).encode(), "/p.xml")
    assert (facts.file_monitoring, facts.device_flow_correlation) == (False, True)
    assert facts.name == "Protect Policy for Linux"


def test_any_namespace_or_prefix_reads() -> None:
    data = (b'<s:Signature xmlns:s="urn:other"><s:Object><s:config><s:agent><s:driver><s:protmode>'
            b"<s:file>1</s:file></s:protmode></s:driver><s:nfm><s:enable>1</s:enable></s:nfm></s:agent>"
            b"<s:janus><s:policy><s:name>P</s:name></s:policy></s:janus></s:config></s:Object></s:Signature>")
    facts = parse(data, "/p.xml")
    assert (facts.file_monitoring, facts.device_flow_correlation, facts.name) == (True, True, "P")


def test_signed_policy_without_the_options_does_not_say() -> None:
    facts = parse(policy_document(file_monitoring=None, device_flow=None).encode(), "/p.xml")
    assert (facts.file_monitoring, facts.device_flow_correlation) == (None, None)
    assert facts.path == "/p.xml"


def test_options_outside_config_do_not_count() -> None:
    """A stray agent/... in the signature part is not the policy's option."""
    data = (f'<Signature xmlns="{XMLDSIG}"><SignedInfo><config><agent><nfm><enable>1</enable></nfm></agent></config>'
            "</SignedInfo><Object><config><agent><nfm><enable>0</enable></nfm></agent></config></Object></Signature>"
            ).encode()
    assert parse(data, "/p.xml").device_flow_correlation is False


@given(st.sampled_from([None, True, False]), st.sampled_from([None, True, False]), st.booleans())
def test_generated_real_policies(file_monitoring: bool | None, device_flow: bool | None, signed: bool) -> None:
    facts = parse(policy_document(file_monitoring, device_flow, signed=signed).encode(), "/p.xml")
    assert (facts.file_monitoring, facts.device_flow_correlation) == (file_monitoring, device_flow)


@pytest.mark.parametrize(("document", "reason"), [
    (b'<!DOCTYPE config SYSTEM "x.dtd"><config><agent><nfm><enable>&on;1</enable></nfm></agent></config>',
     "undefined entity &on;"),
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE config [<!ENTITY on "1">]><config>&on;</config>'
     .encode("utf-16"), "declares XML entities"),
])
def test_entities_are_refused_whatever_the_encoding_or_doctype(document: bytes, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        parse(document, "/opt/cisco/amp/etc/policy.xml")
