"""checks.plist against plists built to cost time or memory: each is refused with a reason, quickly, in little memory.

Every bomb is also loaded in one subprocess limited to 512 MiB of address space, which expands whatever
``load`` returns with ``str()``: a bomb that got through would die there or run out of memory.
"""

from __future__ import annotations

import json
import plistlib
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secure_endpoint_monitoring.checks import plist
from secure_endpoint_monitoring.checks.evidence import netext
from secure_endpoint_monitoring.checks.report import State
from tests import bplist
from tests.bplist import array, ascii_string, build, dictionary, integer
from tests.conftest import Evaluate, result, texts
from tests.mactree import APP, NETWORK, SECURITY, SERVICE, MacTree, extension, keyed_archive

# A guard against hangs, not a speed goal (those are in bench/): the unbounded readers took 47 s and more;
# the bombs below are refused in well under a second, but a loaded CI machine running four test workers
# has stretched the slowest (wide-xml, 0.8 s alone) past 2 s.
SECONDS = 10.0
MEMORY = 512 << 20
WHERE = "x.plist"
BINARY = plistlib.FMT_BINARY


def _big(marker: int, length: int, tail: bytes = b"abc") -> bytes:
    """An object whose declared length (an 8-byte integer after the marker) is far beyond the file."""
    return bytes([marker | 0x0F, 0x13]) + length.to_bytes(8, "big") + tail


def _xml(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">{body}</plist>'.encode()


def _dag_dict(levels: int) -> bytes:
    """Dictionaries whose two values are both the next level."""
    objects = [ascii_string("a"), ascii_string("b"), ascii_string("leaf")]
    for level in range(levels):
        below = 2 if level == 0 else len(objects) - 1
        objects.append(dictionary([0, 1], [below, below]))
    return build(objects, top=len(objects) - 1)


def _shared_lists(levels: int) -> bytes:
    """plistlib.dumps writes a list it meets twice only once: anyone can write a bomb with it."""
    value: Any = "leaf"
    for _ in range(levels):
        value = [value, value]
    return plistlib.dumps(value, fmt=BINARY)


def _wide_string_bomb() -> bytes:
    """60,000 references to one 2 KiB string: few values, but 120 MB of text once expanded."""
    return build([array([1] * 60_000, ref_size=2), ascii_string("s" * 2048)], ref_size=2)


def _deep_xml(levels: int, tag: str = "array") -> bytes:
    if tag == "dict":
        return _xml("<dict><key>k</key>" * levels + "<true/>" + "</dict>" * levels)
    return _xml(f"<{tag}>" * levels + "<true/>" + f"</{tag}>" * levels)


VALID = plistlib.dumps({"CFBundleIdentifier": SERVICE, "CFBundleShortVersionString": "1.24.1",
                        "CFBundleVersion": "1.24.1.1234", "LSMinimumSystemVersion": "11.0"}, fmt=BINARY)
TABLE = struct.unpack(">Q", VALID[-8:])[0]

# name -> (plist, words its reason must hold)
BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    # self reference
    "self-array": (bplist.self_array, "object 0 refers to itself"),
    "self-array-second": (lambda: build([array([1, 0]), integer(1)]), "refers to itself"),
    "self-dict-value": (lambda: build([dictionary([1], [0]), ascii_string("k")]), "refers to itself"),
    "self-dict-key": (lambda: build([dictionary([0], [1]), ascii_string("v")]), "refers to itself"),
    "self-set": (lambda: build([bytes([0xC1, 0])]), "refers to itself"),
    "self-not-top": (lambda: build([array([1]), array([2]), array([2])]), "object 2 refers to itself"),
    "self-2-byte-refs": (lambda: build([array([0], ref_size=2)], ref_size=2), "refers to itself"),
    "self-in-big-array": (lambda: build([array([1] * 500 + [0], ref_size=2), integer(7)], ref_size=2),
                          "reference cycle"),
    # mutual references
    "mutual-pair": (lambda: build([array([1]), array([0])]), "object 1 refers to object 0, which holds it"),
    "mutual-three": (lambda: build([array([1]), array([2]), array([0])]), "reference cycle"),
    "mutual-dicts": (lambda: build([dictionary([2], [1]), dictionary([2], [0]), ascii_string("k")]),
                     "reference cycle"),
    "mutual-behind-diamond": (lambda: build([array([1, 2]), array([3]), array([3]), array([4]), array([1])]),
                              "reference cycle"),
    "mutual-deep-loop": (lambda: build([array([i + 1]) for i in range(30)] + [array([10])]), "reference cycle"),
    # shared references: values once, trees of millions
    "dag-40x2": (lambda: bplist.dag_bomb(40), "expands to more than 1000000 values"),
    "dag-20x2": (lambda: bplist.dag_bomb(20), "expands to more than 1000000 values"),
    "dag-12x14": (lambda: bplist.dag_bomb(12, 14), "expands to more than 1000000 values"),
    "dag-7x200": (lambda: bplist.dag_bomb(7, 200), "expands to more than 1000000 values"),
    "dag-dicts": (lambda: _dag_dict(40), "expands to more than 1000000 values"),
    "dag-plistlib-dumps": (lambda: _shared_lists(40), "expands to more than 1000000 values"),
    "dag-one-wide-array": (lambda: build([array([1] * 1_100_000, ref_size=1), integer(1)]),
                           "expands to more than 1000000 values"),
    "dag-shared-string": (_wide_string_bomb, "bytes of strings and data"),
    # deep nesting, binary
    "deep-binary-65": (lambda: bplist.deep(64), "nests deeper than 64 levels"),
    "deep-binary-1000": (lambda: bplist.deep(1000), "nests deeper than 64 levels"),
    "deep-binary-100k": (lambda: bplist.deep(100_000), "nests deeper than 64 levels"),
    "deep-binary-dicts": (lambda: build([dictionary([i + 1], [i + 2], ref_size=2) if i % 2 == 0 else ascii_string("k")
                                          for i in range(300)] + [integer(1)], ref_size=2),
                          "nests deeper than 64 levels"),
    # the chain below object 2 is 63 deep: 64 levels from the top, 65 through object 1
    "deep-binary-shared": (lambda: build([array([2, 1]), array([2]), *[array([i + 3]) for i in range(62)],
                                          integer(1)]), "nests deeper than 64 levels"),
    # deep nesting, XML
    "deep-xml-65": (lambda: _deep_xml(64), "nests deeper than 64 levels"),
    "deep-xml-dicts": (lambda: _deep_xml(1000, "dict"), "nests deeper than 64 levels"),
    "deep-xml-100k": (lambda: _deep_xml(100_000), "nests deeper than 64 levels"),
    "deep-xml-1M": (lambda: _deep_xml(1_000_000), "nests deeper than 64 levels"),
    "wide-xml": (lambda: _xml("<array>" + "<true/>" * 1_000_001 + "</array>"), "expands to more than 1000000"),
    "xml-entities": (lambda: (b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa">'
                              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">'
                              b']><plist><string>&c;&c;&c;&c;&c;&c;</string></plist>'), "XML entity"),
    # trailers that lie
    "no-objects": (lambda: build([integer(1)], count=0), "trailer: 0 objects"),
    "count-2^63": (lambda: build([integer(1)], count=1 << 63), "trailer: 9223372036854775808 objects"),
    "count-over-bound": (lambda: build([integer(1)], count=200_001), "200001 objects (1 to 200000 allowed)"),
    "count-past-table": (lambda: build([integer(1)], count=1000), "offset table at"),
    "count-2^30-offset-3": (lambda: build([integer(1)], count=1 << 30, offset_size=3), "trailer"),
    "top-past-count": (lambda: build([integer(1)], top=1), "top object 1 of only 1"),
    "top-2^64": (lambda: build([integer(1)], top=(1 << 64) - 1), "top object"),
    "offset-size-0": (lambda: VALID[:-26] + b"\x00" + VALID[-25:], "offset size 0"),
    "offset-size-9": (lambda: VALID[:-26] + b"\x09" + VALID[-25:], "offset size 9"),
    "ref-size-0": (lambda: VALID[:-25] + b"\x00" + VALID[-24:], "reference size 0"),
    "ref-size-200": (lambda: VALID[:-25] + b"\xc8" + VALID[-24:], "reference size 200"),
    "table-at-0": (lambda: build([integer(1)], table=0), "offset table at 0"),
    "table-in-trailer": (lambda: VALID[:-8] + struct.pack(">Q", len(VALID) - 20), "offset table at"),
    "table-2^64": (lambda: build([integer(1)], table=(1 << 64) - 1), "offset table at"),
    # offsets and references out of range
    "offset-past-end": (lambda: build([integer(1)], offsets=[10**6]), "object 0 lies at 1000000"),
    "offset-in-header": (lambda: build([integer(1)], offsets=[3]), "object 0 lies at 3"),
    "offset-at-table": (lambda: build([integer(1)], offsets=[10]), "object 0 lies at 10"),
    "offset-8-byte-huge": (lambda: build([integer(1)], offsets=[(1 << 64) - 1]), "outside the objects"),
    "ref-past-count": (lambda: build([array([1, 7]), integer(1)]), "refers to object 7 of only 2"),
    "dict-key-past-count": (lambda: build([dictionary([200], [1]), integer(1)]), "refers to object 200"),
    "offset-table-to-trailer": (lambda: VALID[:TABLE] + bytes([len(VALID) - 5]) + VALID[TABLE + 1:],
                                "outside the objects"),
    # huge declared lengths
    "string-2^62": (lambda: build([_big(0x50, 1 << 62)]), "object 0 (string) runs past the objects"),
    "data-2^62": (lambda: build([_big(0x40, 1 << 62)]), "object 0 (data) runs past the objects"),
    "utf16-2^63": (lambda: build([_big(0x60, 1 << 63)]), "object 0 (string) runs past the objects"),
    "data-just-past": (lambda: build([bytes([0x4F, 0x10, 200]) + bytes(100)]), "runs past the objects"),
    "array-2^62": (lambda: build([_big(0xA0, 1 << 62, b"\x00")]), "declares 4611686018427387904 entries"),
    "dict-2^62": (lambda: build([_big(0xD0, 1 << 62, b"\x00")]), "(dictionary) declares"),
    "array-2^28-in-array": (lambda: build([array([1]), _big(0xA0, 1 << 28, b"\x00")]), "object 1 (array)"),
    "integer-32k": (lambda: build([bytes([0x1F]) + bytes(64)]), "integer of 32768 bytes"),
    "length-not-integer": (lambda: build([bytes([0x5F, 0x50]) + b"abc"]), "damaged length"),
    "unknown-marker": (lambda: build([bytes([0x75]) + b"abc"]), "unknown marker 0x75"),
    "url-marker": (lambda: build([bytes([0x0C])]), "unknown marker 0x0c"),
}

TRUNCATIONS = [0, 1, 7, 8, 9, 20, 39, 40, len(VALID) // 2, len(VALID) - 33, len(VALID) - 32, len(VALID) - 1]


def _refuse(data: bytes, **bounds: int) -> str:
    start = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        plist.load(data, WHERE, **bounds)
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, f"{elapsed:.2f} s"
    reason = str(caught.value)
    assert reason.startswith(WHERE) and "\n" not in reason, reason
    return reason


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_quickly_with_a_reason(name: str) -> None:
    make, words = BOMBS[name]
    assert words in _refuse(make())


@pytest.mark.parametrize("cut", TRUNCATIONS)
def test_truncated_binary_plist(cut: int) -> None:
    _refuse(VALID[:cut])


def test_truncated_at_every_length() -> None:
    data = plistlib.dumps({"extensions": [extension(SECURITY), extension(NETWORK)]}, fmt=BINARY)
    for cut in range(len(data)):
        _refuse(data[:cut])


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Loads every bomb and truncation in one process under ``prlimit --as=512MiB``; name -> outcome."""
    folder = tmp_path_factory.mktemp("bombs")
    for name, (make, _words) in BOMBS.items():
        (folder / name).write_bytes(make())
    for cut in TRUNCATIONS:
        (folder / f"truncated-{cut}").write_bytes(VALID[:cut])
    program = (
        "import json, pathlib, sys\n"
        "from secure_endpoint_monitoring.checks.plist import load\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).iterdir()):\n"
        "    try:\n"
        "        value = load(path.read_bytes(), path.name)\n"
        "        outcome = f'returned {len(str(value))} characters'\n"  # a bomb that got through expands here
        "    except ValueError as error:\n"
        "        outcome = f'ValueError: {error}'\n"
        "    print(json.dumps([path.name, outcome]), flush=True)\n"
    )
    done = subprocess.run(["prlimit", f"--as={MEMORY}", sys.executable, "-c", program, str(folder)],
                          capture_output=True, text=True, timeout=120, check=False)
    outcomes = dict(json.loads(line) for line in done.stdout.splitlines())
    outcomes["(exit)"] = f"{done.returncode} {done.stderr.strip()[-300:]}"
    return outcomes


@pytest.mark.parametrize("name", sorted([*BOMBS, *(f"truncated-{cut}" for cut in TRUNCATIONS)]))
def test_bomb_is_refused_in_512_mib(limited: dict[str, str], name: str) -> None:
    assert limited["(exit)"] == "0 ", limited["(exit)"]
    assert limited[name].startswith(f"ValueError: {name} "), limited[name]


def test_what_plistlib_does_alone() -> None:
    """The facts the module's docstring states, measured on this Python."""
    start = time.perf_counter()
    cyclic = plistlib.loads(bplist.self_array())
    assert cyclic[0] is cyclic  # a list that holds itself, no error
    bomb = plistlib.loads(bplist.dag_bomb(40))
    assert bomb[0] is bomb[1]  # shared, so parsing is quick, but as a tree it is 2**40 leaves wide
    with pytest.raises(RecursionError):  # not the InvalidFileException plistlib documents
        plistlib.loads(bplist.deep(2000))
    deep = plistlib.loads(_deep_xml(10_000))  # XML: built to any depth
    for _ in range(10_000):
        deep = deep[0]
    assert deep is True
    assert time.perf_counter() - start < SECONDS


# -- what must still parse ----------------------------------------------------------------------------
INFO = {"CFBundleIdentifier": SERVICE, "CFBundleShortVersionString": "1.24.1", "CFBundleVersion": "1.24.1.1234",
        "CFBundleExecutable": "Secure Endpoint Service", "CFBundleSupportedPlatforms": ["MacOSX"],
        "LSMinimumSystemVersion": "11.0", "NSHumanReadableCopyright": "Copyright © 2024 Cisco",
        "DTPlatformBuild": "", "BuildMachineOSBuild": "22G91", "CFBundleInfoDictionaryVersion": "6.0",
        "NSSystemExtensionUsageDescription": "x" * 300, "LSUIElement": True, "CFBundleNumericVersion": 17_000_000}
SYSTEM_VERSION = _xml("<dict><key>BuildID</key><string>6F1F3C92-0E5A-11EF-A9E3-A3A8D1A9B2C1</string>"
                      "<key>ProductBuildVersion</key><string>23E214</string><key>ProductCopyright</key>"
                      "<string>1983-2024 Apple Inc.</string><key>ProductName</key><string>macOS</string>"
                      "<key>ProductUserVisibleVersion</key><string>14.4</string><key>ProductVersion</key>"
                      "<string>14.4</string><key>iOSSupportVersion</key><string>17.4</string></dict>")


def _db(count: int) -> dict[str, Any]:
    items = []
    for i in range(count):
        item = extension(f"com.vendor{i}.extension", version=f"{i}.2.3.{i}")
        item.update({"originPath": f"/Applications/Vendor {i}.app", "references": [{"appPath": f"/App{i}.app",
                     "teamID": "ABCDE12345", "appIdentifier": f"com.vendor{i}"}], "stagedCdhashes": {},
                     "container": {"bundle": b"\x00" * 64}})
        items.append(item)
    return {"extensions": items, "version": 1, "bootUUID": "0E2B0C3C-1A9A-4E5C-8C66-4D2F4A5F0C11",
            "extensionPolicies": [], "developerMode": False}


def _sixteen_mib(binary: bool) -> bytes:
    """A db.plist grown to 16 MiB with real-shaped entries (XML) or big data blobs (binary)."""
    if binary:
        db = _db(60)
        for i, item in enumerate(db["extensions"]):
            item["container"]["bundle"] = bytes([i]) * (270 << 10)
        return plistlib.dumps(db, fmt=BINARY)
    return plistlib.dumps(_db(14_400))


REAL: dict[str, Callable[[], bytes]] = {
    "info-binary": lambda: plistlib.dumps(INFO, fmt=BINARY),
    "info-xml": lambda: plistlib.dumps(INFO),
    "system-version-xml": lambda: SYSTEM_VERSION,
    "system-version-binary": lambda: plistlib.dumps(plistlib.loads(SYSTEM_VERSION), fmt=BINARY),
    "db-60-binary": lambda: plistlib.dumps(_db(60), fmt=BINARY),
    "db-60-xml": lambda: plistlib.dumps(_db(60)),
    "mdm-overrides": lambda: plistlib.dumps({f"com.vendor{i}": {"kTCCServiceSystemPolicyAllFiles": {
        "Allowed": True, "CodeRequirement": "identifier x and anchor apple generic", "IdentifierType": "bundleID"}}
        for i in range(200)}, fmt=BINARY),
    "archive-3000": lambda: keyed_archive([(f"com.vendor{i}", f"Filter {i}", i % 2 == 0, 1 + i % 3)
                                           for i in range(3000)]),
    "shared-within-bounds": lambda: _shared_lists(16),
    "depth-64-binary": lambda: bplist.deep(63),
    "depth-64-xml": lambda: _deep_xml(63),
    "empty-containers": lambda: plistlib.dumps({"a": [], "d": {}, "s": "", "b": b""}, fmt=BINARY),
    "all-types": lambda: plistlib.dumps({"i": -5, "big": 1 << 64 - 1, "f": 1.5, "t": True, "n": False,
                                         "u": plistlib.UID(3), "date": plistlib.loads(_xml(
                                             "<date>2024-05-02T09:12:44Z</date>")), "é": "ünïcode"}, fmt=BINARY),
    "16-mib-binary": lambda: _sixteen_mib(True),
    "16-mib-xml": lambda: _sixteen_mib(False),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_shaped_plists_parse_as_plistlib_reads_them(name: str) -> None:
    data = REAL[name]()
    assert len(data) <= 16 << 20
    start = time.perf_counter()
    value = plist.load(data, WHERE)
    elapsed = time.perf_counter() - start
    assert value == plistlib.loads(data)
    assert elapsed < (3 * SECONDS if name.startswith("16-mib") else SECONDS), f"{elapsed:.2f} s"  # 16 MiB: ~2 s alone


def test_the_archive_shape_is_near_its_bounds_nowhere() -> None:
    data = REAL["archive-3000"]()
    objects = struct.unpack(">Q", data[-24:-16])[0]
    assert 30_000 < objects < plist.MAX_OBJECTS // 5  # real archives hold a few thousand
    facts = netext.parse(data, WHERE)
    assert len(facts.filters) == 3000 and facts.filters[1] == netext.ContentFilter("com.vendor1", "Filter 1", False, 2)


def test_bounds_are_parameters() -> None:
    data = plistlib.dumps({"a": [[1, 2], [3]]}, fmt=BINARY)
    assert plist.load(data, WHERE, max_depth=4, max_expanded=8) == {"a": [[1, 2], [3]]}
    assert "nests deeper than 3 levels" in _refuse(data, max_depth=3)
    assert "expands to more than 7 values" in _refuse(data, max_expanded=7)
    assert "8 objects (1 to 4 allowed)" in _refuse(data, max_objects=4)
    assert "more than 10 bytes" in _refuse(plistlib.dumps(["abcdef", "ghijk"], fmt=BINARY), max_bytes=10)
    assert "nests deeper than 2 levels" in _refuse(plistlib.dumps({"a": [1]}), max_depth=2)


def test_load_dict() -> None:
    assert plist.load_dict(REAL["info-binary"](), WHERE)["CFBundleVersion"] == "1.24.1.1234"
    with pytest.raises(ValueError, match=r"^x\.plist does not hold a dictionary$"):
        plist.load_dict(plistlib.dumps([1]), WHERE)
    with pytest.raises(ValueError, match=r"^x\.plist is not a valid plist \(ExpatError: "):
        plist.load_dict(b"<plist><dict><key>a</key>", WHERE)


# -- keyed archives whose references loop -------------------------------------------------------------
def _archive(objects: list[Any]) -> bytes:
    return plistlib.dumps({"$archiver": "NSKeyedArchiver", "$version": 100000, "$top": {"root": plistlib.UID(1)},
                           "$objects": ["$null", *objects]}, fmt=BINARY)


U = plistlib.UID
CLASS = {"$classname": "NEConfiguration", "$classes": ["NEConfiguration", "NSObject"]}
ARCHIVE_LOOPS: dict[str, list[Any]] = {
    "uid-is-itself": [{"$class": U(2), "Name": U(3), "ContentFilter": U(4)}, CLASS, U(3), {}],
    "ns-string-is-itself": [{"$class": U(2), "Name": U(3), "ContentFilter": U(4)}, CLASS, {"NS.string": U(3)}, {}],
    "ns-strings-point-at-each-other": [{"$class": U(2), "Name": U(3), "ContentFilter": U(5)}, CLASS,
                                       {"NS.string": U(4)}, {"NS.string": U(3)}, {}],
    "uid-to-uid-loop": [{"$class": U(2), "Application": U(3), "ContentFilter": U(5)}, CLASS, U(4), U(3), {}],
    "class-uid-loop": [{"$class": U(2)}, U(3), U(2)],
    "content-filter-loop": [{"$class": U(2), "ContentFilter": U(3)}, CLASS, U(3)],
    "provider-loop": [{"$class": U(2), "ContentFilter": U(3)}, CLASS, {"Provider": U(4)}, {"NS.string": U(5)},
                      U(4)],
    "long-chain": [{"$class": U(2), "Name": U(3), "ContentFilter": U(104)}, CLASS, *[U(i + 4) for i in range(100)],
                   "end", {}],
}


@pytest.mark.parametrize("name", sorted(ARCHIVE_LOOPS))
def test_keyed_archive_reference_loops_end(name: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^ne\.plist: (the keyed archive's references loop|a chain of more than)"):
        netext.parse(_archive(ARCHIVE_LOOPS[name]), "ne.plist")
    assert time.perf_counter() - start < SECONDS


def test_keyed_archive_mutable_string_resolves() -> None:
    facts = netext.parse(_archive([{"$class": U(2), "Name": U(3), "Application": U(4), "ContentFilter": U(5)},
                                   CLASS, {"NS.string": "Cisco"}, {"NS.string": U(6)}, {"Enabled": True}, SERVICE]),
                         "ne.plist")
    assert facts.filters == (netext.ContentFilter(SERVICE, "Cisco", True, netext.FIREWALL_GRADE),)


# -- fuzzing ------------------------------------------------------------------------------------------
def _within_bounds(value: Any) -> bool:
    """An iterative walk of a returned value: no deeper and no larger than the default bounds."""
    stack, values = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        values += 1
        if depth > plist.MAX_DEPTH or values > plist.MAX_EXPANDED:
            return False
        if isinstance(item, dict):
            stack += [(x, depth + 1) for pair in item.items() for x in pair]
        elif isinstance(item, list):
            stack += [(x, depth + 1) for x in item]
    return True


def _load_or_refuse(data: bytes) -> None:
    start = time.perf_counter()
    try:
        value = plist.load(data, WHERE)
    except ValueError as error:
        assert str(error).startswith(WHERE)
    else:
        assert _within_bounds(value)
    assert time.perf_counter() - start < SECONDS


plist_values = st.recursive(
    st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.text(max_size=12) | st.binary(max_size=12)
    | st.floats(allow_nan=False) | st.builds(plistlib.UID, st.integers(0, 1 << 32)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)
xml_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
xml_values = st.recursive(
    st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.binary(max_size=12) | st.floats(allow_nan=False)
    | xml_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(xml_text, inner, max_size=5),
    max_leaves=25,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([b"", b"bplist00", b"<?xml", b"<plist>"]))
def test_random_bytes(data: bytes, header: bytes) -> None:
    _load_or_refuse(header + data)


@FUZZ
@given(plist_values, st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_binary_plists(value: Any, changes: list[tuple[int, int]]) -> None:
    data = bytearray(plistlib.dumps(value, fmt=BINARY))
    for where, byte in changes:
        data[where % len(data)] = byte
    _load_or_refuse(bytes(data))


@FUZZ
@given(plist_values, st.integers(0, 4), st.integers(0, (1 << 64) - 1))
def test_lying_trailer_fields(value: Any, field: int, number: int) -> None:
    data = bytearray(plistlib.dumps(value, fmt=BINARY))
    at, size = [(-26, 1), (-25, 1), (-24, 8), (-16, 8), (-8, 8)][field]
    data[len(data) + at:len(data) + at + size] = (number % (1 << (8 * size))).to_bytes(size, "big")
    _load_or_refuse(bytes(data))


@FUZZ
@given(xml_values, st.lists(st.tuples(st.integers(0, 1 << 16), st.sampled_from(b"<>/&;!x ")), max_size=4))
def test_mutated_xml_plists(value: Any, changes: list[tuple[int, int]]) -> None:
    data = bytearray(plistlib.dumps(value))
    for where, byte in changes:
        data[where % len(data)] = byte
    _load_or_refuse(bytes(data))


def test_valid_plists_survive_the_fuzzer_shapes() -> None:
    """Round trips of the fuzzer's values: nothing a writer makes is refused."""
    for value in ([], {"a": [1, {"b": b"x"}]}, [plistlib.UID(1 << 31)] * 20, -(1 << 63), (1 << 64) - 1):
        assert plist.load(plistlib.dumps(value, fmt=BINARY), WHERE) == value


@FUZZ
@given(st.lists(st.sampled_from([U(i) for i in range(8)]) | st.dictionaries(
    st.sampled_from(["$class", "NS.string", "Name", "Application", "ContentFilter", "Provider", "Enabled"]),
    st.sampled_from([U(i) for i in range(8)]) | st.booleans() | st.text(max_size=4), max_size=5)
    | st.just(CLASS), max_size=8))
def test_archives_with_any_references(objects: list[Any]) -> None:
    start = time.perf_counter()
    try:
        netext.parse(_archive(objects), "ne.plist")
    except ValueError as error:
        assert "loop" in str(error) or "chain" in str(error), error
    assert time.perf_counter() - start < SECONDS


# -- end to end -----------------------------------------------------------------------------------------
@pytest.fixture
def mac(tmp_path: Path) -> MacTree:
    return MacTree(tmp_path / "mac").healthy()


NETEXT = "Library/Preferences/com.apple.networkextension.plist"
BOMB_FILES = {
    "dag": lambda: _shared_lists(40),
    "cycle": bplist.self_array,
    "deep": lambda: bplist.deep(5000),
    "uid-loop": lambda: _archive(ARCHIVE_LOOPS["ns-strings-point-at-each-other"]),
}


@pytest.mark.parametrize("bomb", sorted(BOMB_FILES))
def test_bomb_in_the_network_extension_plist(mac: MacTree, run: Evaluate, bomb: str) -> None:
    mac.write(NETEXT, BOMB_FILES[bomb]())
    start = time.perf_counter()
    report = run(mac)
    assert time.perf_counter() - start < 10
    failed = next(c for c in report.collectors if c.name == "network_extensions")
    assert not failed.success and failed.error is not None and "com.apple.networkextension.plist" in failed.error
    for fault_id in ("12", "13"):
        item = result(report, fault_id)
        assert item.state is State.UNKNOWN, fault_id
        assert "com.apple.networkextension.plist" in texts(item)
    assert result(report, "1").state is State.CLEAR
    assert result(report, "3").state is State.CLEAR


@pytest.mark.parametrize(("rel", "collector", "unaffected"), [
    (f"{APP}/Contents/Info.plist", "connector_app", "5"),  # most Mac faults need the app: it tells 1.14+ apart
    ("Library/SystemExtensions/db.plist", "system_extensions", "12"),
])
def test_bomb_in_the_plists_read_through_load_plist(mac: MacTree, run: Evaluate, rel: str, collector: str,
                                                   unaffected: str) -> None:
    mac.write(rel, _shared_lists(40))
    start = time.perf_counter()
    report = run(mac)
    assert time.perf_counter() - start < 10
    failed = next(c for c in report.collectors if c.name == collector)
    assert failed.error is not None and failed.error.endswith(f"{rel} is refused: expands to more than 1000000 values")
    assert result(report, "2").state is State.UNKNOWN
    assert "expands to more than 1000000 values" in texts(result(report, "2"))
    assert result(report, unaffected).state is State.CLEAR


def test_plugin_answers_with_a_bomb_in_512_mib(mac: MacTree) -> None:
    from tests.commands import script

    mac.write(NETEXT, _shared_lists(40))
    start = time.perf_counter()
    done = subprocess.run(["prlimit", f"--as={MEMORY}", script("check_secure_endpoint"), "--path.rootfs",
                           str(mac.root), "--ampcli.run-from-rootfs", "--state-file", "", "-v"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert time.perf_counter() - start < 20
    lines = done.stdout.splitlines()
    assert done.returncode == 3 and lines[0].startswith("SECURE ENDPOINT UNKNOWN"), (done.returncode, lines)
    assert any("com.apple.networkextension.plist is refused: expands to more than" in line for line in lines), lines
