"""``--lang nl``: everything the plugin prints in Dutch mode is Dutch.

Many fixture hosts (healthy, broken, hostile) are checked with ``--lang nl -vv``; every line is
stripped of what is not language (paths, ids, program and product names, state words) and must then
hold none of a list of common English words. Every text of the catalogue (checks/locale/nl.po, whose
msgids are the English texts) needs a Dutch text of its own with the same placeholders.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polib
import pytest

from secure_endpoint_monitoring.checks import messages, translation
from secure_endpoint_monitoring.checks.messages import TEMPLATES, expat_reason, foreign, log_line, os_reason, said
from secure_endpoint_monitoring.checks.translation import argparse_in, catalogue
from tests import bplist
from tests.commands import run, script
from tests.hosttree import LinuxTree, faults_status, pid_of
from tests.mactree import NETWORK, SECURITY, SERVICE, TCC, MacTree, extension

DAY = 86400.0

# Words that do not occur in Dutch sentences (or only as names, which are stripped first).
_ENGLISH_WORDS = """
    the a an and or not no are were be has have does did do can cannot could would should will which
    that this these those there than then when while with without within from into onto to for by at on
    off after before since until found missing running printed exited answer answered seconds second
    file files folder folders directory permission denied larger smaller expected only none more less
    enough too many much unknown known refused damaged valid invalid such entries objects level
    levels reference references loop loops chain replaced opened being read reads readable writable
    owned owner neither nor nothing its left out state kept keeps run runs user group others says said
    claims built days ago limit what why who where how all any every each other must may shows show
    shown mounted line lines holds hold declares declare well-formed entities entity table either value
    values number exit killed aborted unrecognized choose choice given both one required
"""
ENGLISH = frozenset(_ENGLISH_WORDS.split())

# Names that stay as they are in Dutch: programs, files, products, Apple and Cisco terms.
NAMES = (
    "Secure Endpoint", "SECURE ENDPOINT", "Device Flow Correlation", "Endpoint Security", "Full Disk Access",
    "Secure Boot", "Service app", "Service-app", "Behavioral Protection", "Cisco Orbital", "Orbital",
    "ampcli status", "ampcli policy", "ampcli about", "ampcli", "ampdaemon", "ampscansvc", "USERGROUPS_ENAB",
    "Info.plist", "SystemVersion.plist", "db.plist", "MDMOverrides.plist", "TCC.db", "global.xml",
    "policy.xml", "MDM PPPC", "Privacy", "systemctl restart cisco-amp", "launchctl kickstart",
    "Major", "Critical", "Minor", "Connected", "Degraded", "Normal", "NEConfiguration", "$objects",
    "auth_value", "allowed", "access", "semodule -e", "unconfined_service_t", "kTCCServiceSystemPolicyAllFiles",
    "ClamAV-VDB", "hidepid", "btime", "USERGROUPS_ENAB", "'no'", "'yes'", "MemAvailable", "Live",
)
STATE_WORDS = re.compile(r"\b(OK|WARNING|CRITICAL|UNKNOWN)\b")
PATHS = re.compile(r"(?:\S*/\S*|\S+\.(?:cvd|cld|plist|xml|db|log|state|json|db-wal)\b)")  # anything with a slash
IDENTIFIERS = re.compile(r"\b[\w.-]*(?:_[\w.-]+|\.[a-z]+\.[\w.-]+)\b")  # snake_case keys, bundle ids
# What the fixture hosts themselves print (connector texts, policy names): data, not the plugin's words.
FIXTURE_TEXTS = ("Audit Policy for FireAMP Linux", "Protect Policy for Linux", "Protect Policy for Mac",
                 "Ready for scan", "Cisco Secure Endpoint")


def english_words(text: str) -> list[str]:
    """The English words left in a line once names, paths, ids, numbers and state words are taken out."""
    for name in sorted(FIXTURE_TEXTS + NAMES, key=len, reverse=True):
        text = text.replace(name, " ")
    text = PATHS.sub(" ", text)
    text = IDENTIFIERS.sub(" ", text)
    text = STATE_WORDS.sub(" ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    return [w for w in words if w.lower() in ENGLISH]


def test_english_words_finds_english_and_passes_dutch() -> None:
    assert english_words("could not read processes evidence: /proc is not mounted") == [
        "could", "not", "read", "not", "mounted"]
    assert english_words("SECURE ENDPOINT OK - geen actieve fouten (9 gecontroleerd), connector verbonden") == []
    assert english_words("WARNING: Connectorstatus niet beschikbaar (fout x). Waarom onbekend: "
                         "ampcli status gaf binnen 5 s geen antwoord.") == []


CATALOGUE = translation.CATALOGUE_DIR  # as installed: some tests point the module at a damaged copy
PO = polib.pofile(str(Path(translation.CATALOGUE_DIR) / "nl.po"))
BRACES = re.compile(r"{(\w*)}")
PERCENT = re.compile(r"%(?:\((\w+)\))?[sdr]")


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_message_has_its_own_dutch_text(key: str) -> None:
    en = TEMPLATES[key]
    nl = catalogue("nl").get(en, "")
    assert nl.strip(), key
    fields = sorted(BRACES.findall(en))
    assert sorted(BRACES.findall(nl)) == fields, key  # the same values in both
    if len(re.findall(r"[A-Za-z]{3,}", en.format(**dict.fromkeys(fields, "")))) > 2:
        assert nl != en, key
    assert english_words(nl.format(**dict.fromkeys(fields, ""))) == [], (key, nl)


def test_the_catalogue_is_whole_and_in_step_with_the_code() -> None:
    """No entry untranslated or fuzzy; placeholders as in the msgid; a comment naming a key names one of ours."""
    assert PO.metadata["Language"] == "nl"
    assert [e.msgid for e in PO if not e.translated() or e.obsolete or "fuzzy" in e.flags] == []
    for entry in PO:
        pattern = PERCENT if "python-format" in entry.flags else BRACES
        assert sorted(pattern.findall(entry.msgstr)) == sorted(pattern.findall(entry.msgid)), entry.msgid
        if "python-brace-format" in entry.flags:
            assert entry.comment in TEMPLATES and TEMPLATES[entry.comment] == entry.msgid, entry.msgid
    keyed = {e.msgid for e in PO if "python-brace-format" in e.flags or e.comment in TEMPLATES}
    assert set(TEMPLATES.values()) <= keyed | set(catalogue("nl"))
    assert len({e.msgid for e in PO}) == len(PO)  # each English text once


def test_no_english_sentence_is_raised_below_the_messages() -> None:
    """Readers and programs raise a message key with its values (``said``), never an English f-string: only
    that can be said in Dutch. What is left are a bug's own words (an assertion, a duplicate registration,
    a package imported by its folder's name)."""
    root = Path(messages.__file__).parent  # the checks package, in a checkout or an unpacked sdist
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                first = node.exc.args[0]
                english = isinstance(first, ast.JoinedStr) or (
                    isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value not in TEMPLATES)
                if english and isinstance(node.exc.func, ast.Name) \
                        and node.exc.func.id not in ("KeyError", "AssertionError", "ValueError", "ImportError"):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []


# -- the fixture hosts ----------------------------------------------------------------------------------
Build = Callable[[Path], tuple[Path, list[str]]]
SCENARIOS: dict[str, Build] = {}


def scenario(name: str) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        SCENARIOS[name] = build
        return build
    return register


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)


def _device(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))


def _linux(base: Path) -> LinuxTree:
    return LinuxTree(base / "host").healthy()


def _mac(base: Path) -> MacTree:
    return MacTree(base / "mac").healthy()


@scenario("healthy")
def _healthy(base: Path) -> tuple[Path, list[str]]:
    return _linux(base).root, []


@scenario("not_installed")
def _not_installed(base: Path) -> tuple[Path, list[str]]:
    return LinuxTree(base / "bare", distro="debian").root, []


@scenario("many_faults")
def _many_faults(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove(f"usr/src/kernels/{tree.release}")
    tree.modules()
    tree.secure_boot(True)
    tree.stop("ampdaemon")
    tree.stop("ampscansvc")
    tree.process("ampdaemon")
    tree.write("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    tree.write("etc/login.defs", "USERGROUPS_ENAB no\n")
    tree.chmod("opt/cisco/amp/etc", 0o777)
    tree.selinux(enforcing=True, module="disabled")
    tree.write("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 1000 kB\n")
    tree.definitions("daily.cvd", corrupt=True)
    tree.ampcli(faults_status((18, "Critical", "x"), (16, "Major", "x"), (99, "Minor", "x"), status="Offline"))
    return tree.root, []


@scenario("selinux_missing")
def _selinux_missing(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.selinux(enforcing=True, module="missing")
    return tree.root, []


@scenario("policy_options_off")
def _policy_off(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.policy(file_monitoring=False, device_flow=False)
    tree.selinux(enforcing=False)
    return tree.root, []


@scenario("policy_options_unset")
def _policy_unset(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.policy(file_monitoring=None, device_flow=None)
    return tree.root, []


@scenario("policy_missing")
def _policy_missing(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove(tree.POLICY)
    return tree.root, []


@scenario("policy_not_xml")
def _policy_not_xml(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.write(tree.POLICY, "<config><agent>")
    return tree.root, []


@scenario("policy_entities")
def _policy_entities(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.write(tree.POLICY, '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY e "x">]><config>&e;</config>')
    return tree.root, []


@scenario("global_xml_garbage")
def _global_garbage(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.global_config(text="\x00\x01 not xml")
    return tree.root, []


@scenario("ampcli_missing")
def _ampcli_missing(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove(tree.AMPCLI)
    return tree.root, []


@scenario("ampcli_fails")
def _ampcli_fails(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli("error: daemon unreachable\n", exit_code=4)
    return tree.root, []


@scenario("ampcli_garbage")
def _ampcli_garbage(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli("nothing useful here\n")
    return tree.root, []


@scenario("ampcli_not_utf8")
def _ampcli_not_utf8(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(b"Status: \xff\xfe\n")
    return tree.root, []


@scenario("ampcli_flood")
def _ampcli_flood(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli("Status: Connected\nFaults: 500 Major\n" + "".join(f"ID {n}\n" for n in range(500)))
    return tree.root, []


@scenario("ampcli_hangs")
def _ampcli_hangs(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(hang=30)
    return tree.root, ["--ampcli-timeout", "0.5"]


@scenario("plugin_timeout")
def _plugin_timeout(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(hang=30)
    return tree.root, ["-t", "1", "--ampcli-timeout", "30"]


@scenario("not_connected")
def _not_connected(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(faults_status(status="Disconnected", mode="Normal"))
    return tree.root, []


@scenario("definitions_stale")
def _stale(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    now = time.time()
    tree.ampcli(policy="")
    tree.definitions("main.cvd", build_time=now - 30 * DAY)
    tree.definitions("daily.cvd", build_time=now - 30 * DAY)
    tree.definitions("bytecode.cvd", build_time=now + 400 * DAY)
    return tree.root, []


@scenario("definitions_updated_stale")
def _updated_stale(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    from tests.hosttree import policy_output

    tree.ampcli(policy=policy_output(time.time() - 20 * DAY))
    return tree.root, []


@scenario("definitions_only_future")
def _only_future(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(policy="")
    for name in ("main.cvd", "daily.cvd"):
        tree.definitions(name, build_time=time.time() + 90 * DAY)
    return tree.root, []


@scenario("definitions_none")
def _no_definitions(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(policy="")
    tree.remove(tree.DEFINITIONS)
    return tree.root, []


@scenario("definitions_broken_headers")
def _broken_headers(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(policy="")
    tree.stop("ampscansvc")
    tree.definitions("main.cvd", data=b"ClamAV-VDB:a:b:c".ljust(512, b" ") + b"x")
    tree.definitions("daily.cvd", data=b"no header at all")
    tree.definitions("bytecode.cvd", data=b"ClamAV-VDB:\xff".ljust(512, b" "))
    tree.definitions("safebrowsing.cvd", data=b"ClamAV-VDB:1:x:y:z:0:d:b:1".ljust(512, b" "))
    return tree.root, []


@scenario("scan_restarts")
def _scan_restarts(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(faults_status((6, "Major", "x"), mode="Normal"))
    return tree.root, []


@scenario("no_proc")
def _no_proc(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove("proc")
    return tree.root, []


@scenario("proc_without_init")
def _proc_without_init(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.kill(1)
    return tree.root, []


@scenario("proc_stat_without_btime")
def _no_btime(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.write("proc/stat", "cpu 1 2 3 4\n")
    return tree.root, []


@scenario("proc_pid_stat_garbage")
def _pid_stat_garbage(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.write(f"proc/{pid_of(tree, 'ampscansvc')}/stat", "garbage\n")
    return tree.root, []


@scenario("no_os_release")
def _no_os_release(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove("etc/os-release")
    return tree.root, []


@scenario("no_kernel_release")
def _no_kernel_release(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.remove("proc/sys/kernel/osrelease")
    return tree.root, []


@scenario("symlink_loop")
def _symlink_loop(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.symlink("etc/passwd", "/etc/passwd")
    tree.symlink(tree.POLICY, "policy.xml")
    return tree.root, []


@scenario("huge_policy")
def _huge_policy(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.write(tree.POLICY, b"<config>" + b" " * (17 << 20) + b"</config>")
    return tree.root, []


@scenario("fifos")
def _fifos(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    for rel in ("etc/passwd", "opt/cisco/amp/etc/global.xml", "proc/modules", "proc/meminfo",
                "sys/fs/selinux/enforce", "opt/cisco/amp/var/clamav/daily.cvd"):
        _fifo(tree.root / rel)
    _fifo(tree.root / tree.POLICY)
    return tree.root, []


@scenario("devices")
def _devices(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    _device(tree.root / f"proc/{pid_of(tree, 'ampscansvc')}/stat")
    _device(tree.root / "etc/os-release")
    return tree.root, []


@scenario("unreadable_as_root_without_dac")
def _unreadable(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    for rel in (f"lib/modules/{tree.release}", "var/lib/selinux/targeted/active/modules", "opt/cisco/amp/bin"):
        os.chown(tree.root / rel, 12345, 12345)
        (tree.root / rel).chmod(0o700)
    os.chown(tree.root / tree.POLICY, 12345, 12345)
    (tree.root / tree.POLICY).chmod(0o600)
    return tree.root, ["no-dac"]


@scenario("damaged_state_file")
def _damaged_state(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    state = base / "state.json"
    state.write_text("{not json")
    return tree.root, ["--state-file", str(state)]


@scenario("refused_state_file")
def _refused_state(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    state = base / "state.json"
    state.write_text("{}")
    state.chmod(0o666)
    return tree.root, ["--state-file", str(state)]


@scenario("state_file_is_a_link")
def _linked_state(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    (base / "real.json").write_text("{}")
    (base / "state.json").symlink_to(base / "real.json")
    return tree.root, ["--state-file", str(base / "state.json")]


@scenario("mac_healthy")
def _mac_healthy(base: Path) -> tuple[Path, list[str]]:
    return _mac(base).root, []


@scenario("mac_faults")
def _mac_faults(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.extensions(extension(SECURITY, state="activated_waiting_for_user", version="1.23.0.1"),
                   extension(NETWORK, state="activated_waiting_for_reboot"))
    mac.tcc({SERVICE: False})
    mac.orbital()
    mac.content_filters((SERVICE, "Cisco Secure Endpoint", False, 1),
                        *[(f"com.example.f{n}", f"Filter {n}", True, 1) for n in range(4)])
    mac.scan_account(user=False, group=False)
    mac.ampcli(faults_status((14, "Critical", "x"), mode="Normal"))
    return mac.root, []


@scenario("mac_filter_missing")
def _mac_filter_missing(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.content_filters()
    mac.extensions(extension(SECURITY, version="1.23.0.1"), extension(NETWORK))
    return mac.root, []


@scenario("mac_legacy")
def _mac_legacy(base: Path) -> tuple[Path, list[str]]:
    return MacTree(base / "legacy").healthy_legacy().root, []


@scenario("mac_unknowns")
def _mac_unknowns(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    broken = extension(SECURITY)
    del broken["bundleVersion"]
    mac.extensions(broken, extension(NETWORK))
    mac.remove(f"{TCC}/TCC.db")
    mac.remove("Applications/Cisco Secure Endpoint/Secure Endpoint Service.app/Contents/Info.plist")
    mac.remove("Library/Preferences/com.apple.networkextension.plist")
    return mac.root, []


@scenario("mac_old_tcc")
def _mac_old_tcc(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    path = mac.root / TCC / "TCC.db"
    path.unlink()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE access (service TEXT, client TEXT)")
    db.close()
    mac.write(f"{TCC}/MDMOverrides.plist", b"not a plist")
    return mac.root, []


@scenario("mac_hostile")
def _mac_hostile(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    loop = bplist.build([bplist.dictionary([1], [2]), bplist.ascii_string("k"), bplist.array([2])])
    mac.write("Library/SystemExtensions/db.plist", loop)
    objects = [bplist.dictionary([1], [2]), bplist.ascii_string("k")]
    objects += [bplist.array([3 + level] * 2) for level in range(40)]
    objects.append(bplist.ascii_string("x"))
    mac.write("Applications/Cisco Secure Endpoint/Secure Endpoint Service.app/Contents/Info.plist",
              bplist.build(objects))
    mac.plist("Library/Preferences/com.apple.networkextension.plist", {"no": "objects"})
    _fifo(mac.root / TCC / "TCC.db-wal")
    mac.write("System/Library/CoreServices/SystemVersion.plist", b"bplist00 broken")
    return mac.root, []


@scenario("mac_more_hostile")
def _mac_more_hostile(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.plist("Library/SystemExtensions/db.plist", {"extensions": "nope"})
    mac.plist("Applications/Cisco Secure Endpoint/Secure Endpoint Service.app/Contents/Info.plist", ["a list"])
    mac.write(f"{TCC}/TCC.db", b"not a database at all" * 100)
    mac.plist("System/Library/CoreServices/SystemVersion.plist", {"ProductName": "macOS"})
    import plistlib

    objects: list[object] = ["$null", {"$classname": "NEConfiguration"}]
    objects.append({"$class": plistlib.UID(1), "ContentFilter": plistlib.UID(2), "Name": plistlib.UID(3),
                    "Application": plistlib.UID(3)})
    objects.append({"NS.string": plistlib.UID(3)})
    mac.plist("Library/Preferences/com.apple.networkextension.plist",
              {"$archiver": "NSKeyedArchiver", "$version": 100000, "$top": {"Root": plistlib.UID(2)},
               "$objects": objects})
    return mac.root, []


@scenario("mac_tcc_not_a_database")
def _mac_tcc_garbage(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.write(f"{TCC}/TCC.db", b"not a database at all" * 100)
    return mac.root, []


@scenario("mac_mdm_overrides_broken")
def _mac_mdm_broken(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.write(f"{TCC}/MDMOverrides.plist", b'<?xml version="1.0"?><plist><dict><key>a</key>')
    return mac.root, []


@scenario("mac_binary_plist_damaged")
def _mac_binary_damaged(base: Path) -> tuple[Path, list[str]]:
    mac = _mac(base)
    mac.write("Library/SystemExtensions/db.plist", b"bplist00" + b"\x00" * 40)
    return mac.root, []


@scenario("root_behind_a_locked_folder")
def _locked_root(base: Path) -> tuple[Path, list[str]]:
    tree = LinuxTree(base / "locked" / "host").healthy()
    os.chown(base / "locked", 12345, 12345)
    (base / "locked").chmod(0o700)
    return tree.root, ["no-dac"]


@scenario("odd_file_names")
def _odd_names(base: Path) -> tuple[Path, list[str]]:
    tree = _linux(base)
    tree.ampcli(policy="")
    now = time.time()
    for name in ("main.cvd", "daily.cvd"):
        tree.definitions(name, build_time=now - 30 * DAY)
    folder = os.fsencode(tree.root / tree.DEFINITIONS)
    tree.definitions("future.cvd", build_time=now + 90 * DAY)
    os.rename(folder + b"/future.cvd", folder + b"/fut\xfeure\n|.cvd")
    return tree.root, []


def plugin_nl(root: Path, extra: list[str]) -> tuple[int, str]:
    args = [a for a in extra if a != "no-dac"]
    if "--state-file" not in args:
        args += ["--state-file", ""]
    argv = [script("check_secure_endpoint"), "--path.rootfs", str(root), "--ampcli.run-from-rootfs",
            "--lang", "nl", "-vv", *args]
    if "no-dac" in extra:
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_dutch_output_holds_no_english(tmp_path: Path, name: str) -> None:
    root, extra = SCENARIOS[name](tmp_path)
    code, stdout = plugin_nl(root, extra)
    lines = stdout.splitlines()
    assert lines and lines[0].startswith("SECURE ENDPOINT "), stdout
    assert 0 <= code <= 3
    found = {line: english_words(line.partition(" | ")[0]) for line in lines}
    assert {line: words for line, words in found.items() if words} == {}


@pytest.mark.parametrize(("args", "line"), [
    (["--bogus"], "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: onbekende argumenten: --bogus"),
    (["--ignore", "eighteen"], "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: argument --ignore: 'eighteen' "
                               "is geen fout-id of foutnaam uit de catalogus (id's 1 tot en met 19, namen zoals "
                               "scan_service_user_unavailable of not_installed)"),
    (["--lang", "nl", "--ampcli-timeout", "0"],
     "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: argument --ampcli-timeout: '0' moet een getal groter dan 0 "
     "en hoogstens 1e9 zijn"),
    (["--critical", "8", "--warning", "8"], "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: fout 8 staat zowel "
                                            "bij --critical als bij --warning"),
    (["-t", "-2"], "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: --timeout mag niet negatief zijn"),
    (["-t", "x"], "SECURE ENDPOINT UNKNOWN - ongeldige argumenten: argument -t/--timeout: ongeldige int-waarde: 'x'"),
])
def test_bad_arguments_in_dutch(healthy: LinuxTree, args: list[str], line: str) -> None:
    done = run("check_secure_endpoint", "--lang", "nl", "--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
               "--state-file", "",
               *args)
    assert (done.returncode, done.stdout.splitlines()) == (3, [line])


def test_missing_root_in_dutch(tmp_path: Path) -> None:
    done = run("check_secure_endpoint", "--lang=nl", "--path.rootfs", str(tmp_path / "nergens"))
    assert (done.returncode, done.stdout.splitlines()) == (
        3, [f"SECURE ENDPOINT UNKNOWN - ongeldige argumenten: --path.rootfs {tmp_path}/nergens is geen map"])


# -- texts the readers raise, and texts written in English elsewhere -------------------------------------
RAISED = [
    (said("not_regular", path="/etc/passwd", kind=said("kind_fifo")), "/etc/passwd is a FIFO, not a regular file",
     "/etc/passwd is een FIFO, geen gewoon bestand"),
    (said("too_large_gib", path="/etc/passwd", limit=2), "/etc/passwd is larger than 2 GiB",
     "/etc/passwd is groter dan 2 GiB"),
    (said("link_loop_at", path="/etc/x"), "too many levels of symbolic links at /etc/x",
     "te veel niveaus van symbolische koppelingen in /etc/x"),
    (said("no_answer_left", program="/opt/cisco/amp/bin/ampcli", seconds="0.4"),
     "/opt/cisco/amp/bin/ampcli did not answer in the 0.4 s left of the evaluation's time",
     "/opt/cisco/amp/bin/ampcli gaf geen antwoord in de 0.4 s die de evaluatie nog had"),
    (said("plist_refused", path="/a.plist", reason=said("plist_depth", count=64)),
     "/a.plist is refused: nests deeper than 64 levels", "/a.plist is geweigerd: nest dieper dan 64 niveaus"),
    (said("bplist_entries", index=1, kind=foreign("dictionary"), count=9),
     "object 1 (dictionary) declares 9 entries, past the objects",
     "object 1 (woordenboek) noemt 9 items, voorbij de objecten"),
    (said("home_unreachable", path="/root", reason=os_reason(PermissionError(errno.EACCES, "Permission denied"))),
     "home folder /root cannot be reached (Permission denied)", "thuismap /root is onbereikbaar (toegang geweigerd)"),
    (said("it_is", kind=said("kind_chr")), "it is a character device", "het is een tekenapparaat"),
    (said("link_owner", path="/tmp/s", owner=1001, uid=0),
     "/tmp/s is a symbolic link owned by uid 1001, neither root nor this user (uid 0)",
     "/tmp/s is een symbolische koppeling van uid 1001, niet van root en niet van deze gebruiker (uid 0)"),
]


@pytest.mark.parametrize(("text", "english", "dutch"), RAISED, ids=[english for _, english, _ in RAISED])
def test_what_the_readers_raise_is_said_in_both(text: messages.Localized, english: str, dutch: str) -> None:
    assert (str.__str__(text), text.render("en"), text.render("nl")) == (english, english, dutch)
    assert english_words(dutch) == []


def test_plistlib_and_expat_are_said_in_dutch() -> None:
    from secure_endpoint_monitoring.checks import plist

    with pytest.raises(ValueError) as invalid:
        plist.load(b"<plist><dict><key>a</key></plist>", "/a.plist")
    reason = messages.reason_of(invalid.value)
    assert reason is not None
    assert reason.render("en") == "/a.plist is not a valid plist (ExpatError: mismatched tag: line 1, column 27)"
    assert reason.render("nl") == \
        "/a.plist is geen geldige plist (ExpatError: begin- en eindtag verschillen: regel 1, kolom 27)"
    with pytest.raises(ValueError) as refused:
        plist.load(b"bplist00" + b"\0" * 8, "/b.plist")
    reason = messages.reason_of(refused.value)
    assert reason is not None and reason.render("nl") == \
        "/b.plist is geweigerd: binaire plist te kort voor een object en het slotstuk"
    from xml.parsers.expat import ExpatError, ParserCreate

    with pytest.raises(ExpatError) as expat:
        ParserCreate().Parse(b"<a></b>", True)
    assert expat_reason(expat.value).render("en") == "mismatched tag: line 1, column 5"
    assert expat_reason(expat.value).render("nl") == "begin- en eindtag verschillen: regel 1, kolom 5"


def test_an_unknown_english_text_stays_as_it_is() -> None:
    text = foreign("something nobody wrote a pattern for")
    assert text.render("nl") == text.render("en") == "something nobody wrote a pattern for"


@pytest.mark.parametrize("damage", ["no polib", "no catalogue", "not a catalogue", "a FIFO", "too large"])
def test_a_damaged_install_falls_back_to_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                damage: str) -> None:
    """Without polib or with a broken nl.po the plugin speaks English rather than raising, blocking on a
    FIFO, or parsing megabytes past its -t."""
    if damage == "no polib":
        monkeypatch.setitem(__import__("sys").modules, "polib", None)
    else:
        monkeypatch.setattr(translation, "CATALOGUE_DIR", str(tmp_path))
        catalogue_file = tmp_path / "nl.po"
        if damage == "not a catalogue":
            catalogue_file.write_bytes(b"\xff\xfe msgid \"unterminated\n")
        elif damage == "a FIFO":
            os.mkfifo(catalogue_file)
        elif damage == "too large":
            real = (Path(CATALOGUE) / "nl.po").read_text()
            catalogue_file.write_text(real + "#" * translation.CATALOGUE_LIMIT + "\n")
    translation.catalogue.cache_clear()
    try:
        assert translation.catalogue("nl") == {}
        assert said("not_installed").render("nl") == "the connector is not installed"
    finally:
        translation.catalogue.cache_clear()


def test_a_translation_with_other_placeholders_is_left_out(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A slip in nl.po ({naam} for {name}, a %s dropped) costs that one text its Dutch, never the verdict."""
    text = (Path(CATALOGUE) / "nl.po").read_text()
    text = text.replace('msgstr "{name} draait niet"', 'msgstr "{naam} draait niet"', 1)
    text = text.replace('msgstr "verwacht één waarde"', 'msgstr "verwacht één waarde %s"', 1)
    (tmp_path / "nl.po").write_text(text)
    monkeypatch.setattr(translation, "CATALOGUE_DIR", str(tmp_path))
    translation.catalogue.cache_clear()
    try:
        assert said("process_missing", name="ampdaemon").render("nl") == "ampdaemon is not running"
        assert translation.translate("expected one argument", "nl") == "expected one argument"
        assert said("not_installed").render("nl") == "de connector is niet geïnstalleerd"
    finally:
        translation.catalogue.cache_clear()


def test_parses_in_several_threads_keep_their_language() -> None:
    """The argparse swap is one at a time: overlapping Dutch and English parses each get their own."""
    import argparse

    from secure_endpoint_monitoring.checks import nagios

    before = vars(argparse)["_"]
    wrong: list[str] = []

    def parse(lang: str, expected: str) -> None:
        for _ in range(200):
            try:
                nagios.parse_args(["--lang", lang, "-t"])
            except nagios.UsageError as error:
                if expected not in error.args[0]:
                    wrong.append(error.args[0])

    threads = [threading.Thread(target=parse, args=args) for args in
               [("en", "expected one argument"), ("nl", "verwacht één waarde")] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == [] and vars(argparse)["_"] is before


def test_os_errors_are_said_in_dutch_by_their_text() -> None:
    assert os_reason(FileNotFoundError(errno.ENOENT, "No such file or directory")).render("nl") == \
        "bestand of map bestaat niet"
    assert os_reason(OSError(errno.EPROTO, "Protocol error")).render("nl") == "systeemfout EPROTO"
    assert os_reason(OSError(errno.EACCES, "Permission denied")).render("en") == "Permission denied"


@pytest.mark.parametrize(("args", "english", "dutch"), [
    (["--bogus", "x"], "unrecognized arguments: --bogus x", "onbekende argumenten: --bogus x"),
    (["--not-installed", "maybe"],
     "argument --not-installed: invalid choice: 'maybe' (choose from 'critical', 'ok', 'unknown', 'warning')",
     "argument --not-installed: ongeldige keuze: 'maybe' (kies uit 'critical', 'ok', 'unknown', 'warning')"),
    (["-t", "x"], "argument -t/--timeout: invalid int value: 'x'", "argument -t/--timeout: ongeldige int-waarde: 'x'"),
    (["--critical"], "argument --critical: expected one argument", "argument --critical: verwacht één waarde"),
    (["--ampcli-timeout", "0"], "argument --ampcli-timeout: '0' must be a number greater than 0 and at most 1e9",
     "argument --ampcli-timeout: '0' moet een getal groter dan 0 en hoogstens 1e9 zijn"),
])
def test_argparse_says_it_in_the_language_asked_for(args: list[str], english: str, dutch: str) -> None:
    from secure_endpoint_monitoring.checks import nagios

    for lang, expected in (("en", english), ("nl", dutch)):
        with pytest.raises(nagios.UsageError) as bad:
            nagios.parse_args(["--lang", lang, *args])
        reason = bad.value.args[0]
        assert (reason.render(lang) if isinstance(reason, messages.Localized) else reason) == expected


def test_argparse_is_left_as_it_was() -> None:
    import argparse

    before = vars(argparse)["_"]
    with argparse_in("nl"):
        assert vars(argparse)["_"]("expected one argument") == "verwacht één waarde"
    assert vars(argparse)["_"] is before


@pytest.mark.parametrize(("template", "args", "dutch"), [
    ("state file %s was damaged and has been reset", ("/s",), "statusbestand /s was beschadigd en is opnieuw begonnen"),
    ("state file %s cannot be used (%s); state is kept for this run only", ("/s", said("hard_links", count=2)),
     "statusbestand /s is niet te gebruiken (het heeft 2 harde koppelingen); de status geldt alleen voor deze "
     "controle"),
    ("state file %s cannot be made (%s); state is kept for this run only", ("/s", said("home_not_writable", path="/")),
     "statusbestand /s kan niet worden gemaakt (deze gebruiker mag niet in thuismap / schrijven); de status geldt "
     "alleen voor deze controle"),
    ("state file %s cannot be saved (%s); this run's state is lost", ("/s", os.strerror(errno.ENOSPC)),
     "statusbestand /s kan niet worden opgeslagen (geen ruimte meer op het apparaat); de status van deze controle "
     "gaat verloren"),
    ("state file %s is larger than %d bytes and has been reset", ("/s", 1048576),
     "statusbestand /s is groter dan 1048576 bytes en is opnieuw begonnen"),
    ("state file %s is locked by another run; this run's state is kept in memory only", ("/s",),
     "statusbestand /s is vergrendeld door een andere controle; de status van deze controle blijft alleen in het "
     "geheugen"),
    ("state file %s cannot be locked (%s); this run's state is kept in memory only", ("/s", "Permission denied"),
     "statusbestand /s kan niet worden vergrendeld (toegang geweigerd); de status van deze controle blijft alleen "
     "in het geheugen"),
])
def test_the_state_files_log_lines_in_dutch(template: str, args: tuple[object, ...], dutch: str) -> None:
    assert log_line(template, args, "nl") == dutch
    assert log_line(template, args, "en") == template % args
    assert english_words(dutch) == []


def test_every_log_line_we_write_has_dutch() -> None:
    root = Path(messages.__file__).parent  # the checks package, in a checkout or an unpacked sdist
    written = []
    for name in ("state.py", "nagios.py"):
        written += re.findall(r'log\.(?:warning|info|error)\(\s*"((?:[^"\\]|\\.)*)"', (root / name).read_text())
    written += re.findall(r'^    "\w+": "([^"]+)",$', (root / "nagios.py").read_text(), re.M)  # LOOKUP_LINES
    assert len(written) > 8, written
    assert sorted(set(written) - set(catalogue("nl"))) == []


def test_the_plugins_own_timeout_is_one_dutch_line(healthy: LinuxTree, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import nagiosplugin

    from secure_endpoint_monitoring.checks import nagios

    def hangs(self: object) -> None:
        raise nagiosplugin.Timeout("1s")  # what nagiosplugin's alarm raises when -t runs out

    monkeypatch.setattr(nagios.SecureEndpoint, "probe", hangs)
    args, policy = nagios.parse_args(["--path.rootfs", str(healthy.root), "--ampcli.run-from-rootfs",
                                      "--state-file", "", "--lang", "nl",
                                      "-t", "1"])
    with pytest.raises(SystemExit) as ended:
        nagios.run(args, policy)
    assert ended.value.code == 3
    assert capsys.readouterr().out.splitlines() == ["SECURE ENDPOINT UNKNOWN - de controle is na 1 s afgebroken (-t 1)"]
