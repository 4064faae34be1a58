"""The fault catalogue: every fault of both Cisco tables, complete texts, our own words."""

from __future__ import annotations

import re

import pytest

from secure_endpoint_monitoring.checks import catalog
from secure_endpoint_monitoring.checks.catalog import Platform
from secure_endpoint_monitoring.checks.evaluate import fault_checks
from secure_endpoint_monitoring.checks.messages import TEMPLATES, Msg

LINUX_IDS = ["5", "6", "7", "8", "9", "11", "16", "18", "19", "next_kernel_headers_missing"]
MACOS_IDS = ["1", "2", "3", "4", "5", "6", "7", "10", "12", "13", "14", "15", "17", "18"]


def test_every_documented_fault_is_in_the_catalogue() -> None:
    assert [f.id for f in catalog.faults_for(Platform.LINUX)] == LINUX_IDS  # Cisco's by number, then ours
    assert [f.id for f in catalog.faults_for(Platform.MACOS)] == MACOS_IDS


def test_every_macos_fault_has_a_check() -> None:
    assert sorted(fault_checks(Platform.MACOS)) == sorted(MACOS_IDS)


def test_every_linux_fault_has_a_check() -> None:
    assert sorted(fault_checks(Platform.LINUX)) == sorted(LINUX_IDS)


def test_every_registered_check_judges_a_fault_of_the_catalogue() -> None:
    """A check registered with ``judges`` for an id the catalogue lacks, or a catalogue entry without one."""
    from secure_endpoint_monitoring.checks.faults import CHECKS

    fault_checks(Platform.MACOS)  # loads every platform's checks
    wanted = {f.id for f in catalog.FAULTS + catalog.HEALTH_CHECKS} - {"not_installed"}
    assert set(CHECKS) == wanted


def test_a_fault_has_one_check() -> None:
    from secure_endpoint_monitoring.checks.faults import judges

    with pytest.raises(ValueError, match="fault 7 has a check already: scan_service_not_started"):
        judges("7")(lambda ev: None)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("fault", catalog.FAULTS + catalog.HEALTH_CHECKS, ids=lambda f: f.id)
def test_texts_are_complete(fault: catalog.Fault) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", fault.slug)
    for text in (fault.title, fault.meaning, fault.fix):
        assert text.en.strip() and text.get("nl").strip()
        assert text.en != text.get("nl")  # in the Dutch catalogue, checks/locale/nl.po
        assert "|" not in text.en + text.get("nl")  # would cut Nagios output
    for platform in fault.platforms:
        url = fault.doc_url(platform)
        if fault.documented:
            assert url.startswith("https://www.cisco.com/"), url
        else:  # the project's runbook, at its section for the check
            assert url == f"{catalog.PROJECT_RUNBOOK_URL}#{fault.slug}", url


def test_slugs_are_unique() -> None:
    slugs = [f.slug for f in catalog.FAULTS + catalog.HEALTH_CHECKS]
    assert len(slugs) == len(set(slugs))


def test_message_templates_render_in_both_languages() -> None:
    for key, en in TEMPLATES.items():
        names = set(re.findall(r"{(\w+)}", en))
        rendered = Msg(key, dict.fromkeys(names, "x"))
        assert rendered.render("en") and rendered.render("nl")
