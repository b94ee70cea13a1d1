"""Windows persistence places: Run keys, auto-start services, scheduled tasks, Startup folders.
Parsing is pure (tested anywhere); only windows_entries() touches winreg, and only on Windows."""

from __future__ import annotations

import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from quet.errors import InputError
from quet.scanner.persistence import PersistenceEntry

_CV = r"Software\Microsoft\Windows\CurrentVersion"
_WOW_CV = r"Software\Wow6432Node\Microsoft\Windows\CurrentVersion"
_NT_CV = r"Software\Microsoft\Windows NT\CurrentVersion"
WINLOGON_KEY = rf"HKLM\{_NT_CV}\Winlogon"
WINDOWS_KEY = rf"HKLM\{_NT_CV}\Windows"
SERVICES_KEY = r"HKLM\SYSTEM\CurrentControlSet\Services"

RUN_KEYS: tuple[str, ...] = (
    rf"HKLM\{_CV}\Run",
    rf"HKLM\{_CV}\RunOnce",
    rf"HKLM\{_CV}\RunOnceEx",
    rf"HKLM\{_CV}\RunServices",
    rf"HKLM\{_CV}\RunServicesOnce",
    rf"HKLM\{_CV}\Policies\Explorer\Run",
    rf"HKLM\{_WOW_CV}\Run",
    rf"HKLM\{_WOW_CV}\RunOnce",
    rf"HKLM\{_WOW_CV}\Policies\Explorer\Run",
    rf"HKCU\{_CV}\Run",
    rf"HKCU\{_CV}\RunOnce",
    rf"HKCU\{_CV}\RunServices",
    rf"HKCU\{_CV}\RunServicesOnce",
    rf"HKCU\{_CV}\Policies\Explorer\Run",
    rf"HKCU\{_NT_CV}\Windows",
    rf"HKCU\{_NT_CV}\Winlogon",
    WINLOGON_KEY,
    WINDOWS_KEY,
)

# In these keys only the named values start programs; the rest are settings.
_VALUE_FILTER: dict[str, frozenset[str]] = {
    "winlogon": frozenset({"shell", "userinit", "taskman", "appsetup"}),
    "windows": frozenset({"appinit_dlls", "load", "run"}),
}

DEFAULT_ENV: dict[str, str] = {
    "systemroot": r"C:\Windows",
    "windir": r"C:\Windows",
    "systemdrive": "C:",
    "programfiles": r"C:\Program Files",
    "programfiles(x86)": r"C:\Program Files (x86)",
    "programw6432": r"C:\Program Files",
    "commonprogramfiles": r"C:\Program Files\Common Files",
    "programdata": r"C:\ProgramData",
    "allusersprofile": r"C:\ProgramData",
    "public": r"C:\Users\Public",
}

_EXE_EXT = re.compile(
    r"\.(?:exe|com|bat|cmd|dll|sys|scr|cpl|ocx|ps1|vbs|vbe|js|jse|wsf|hta|msi)$", re.I
)
_ENV_VAR = re.compile(r"%([^%\s]{1,64})%")
_DLL_HOSTS = {"rundll32", "rundll32.exe", "regsvr32", "regsvr32.exe"}


def _env() -> Mapping[str, str]:
    if sys.platform == "win32":
        return {k.lower(): v for k, v in os.environ.items()}
    return DEFAULT_ENV


def expand(text: str, env: Mapping[str, str] | None = None) -> str:
    """%VAR% expanded (case-insensitive); unknown variables left as they are."""
    table = {k.lower(): v for k, v in (env if env is not None else _env()).items()}
    return _ENV_VAR.sub(lambda m: table.get(m.group(1).lower(), m.group(0)), text)


def _first_path(text: str) -> tuple[str, str]:
    """The leading program path of a command line (quoted, or the shortest space-containing
    prefix ending in an executable extension) and the rest of the line."""
    s = text.lstrip()
    if s.startswith('"'):
        end = s.find('"', 1)
        if end < 0:
            return s[1:].strip(), ""
        return s[1:end].strip(), s[end + 1 :].lstrip()
    words = s.split(" ")
    for i in range(len(words)):
        head = " ".join(words[: i + 1])
        if _EXE_EXT.search(head.rstrip(",")):
            return head.rstrip(","), " ".join(words[i + 1 :]).lstrip()
    first, _, rest = s.partition(" ")
    return first, rest.lstrip()


def _system_path(path: str, env: Mapping[str, str]) -> str:
    low = path.lower()
    root = expand("%SystemRoot%", env)
    if low.startswith("\\??\\"):
        return path[4:]
    if low.startswith("\\systemroot\\"):
        return root + path[len("\\systemroot") :]
    if low.startswith(("system32\\", "syswow64\\")):  # driver ImagePaths are SystemRoot-relative
        return root + "\\" + path
    return path


def command_target(command: str, env: Mapping[str, str] | None = None) -> str:
    """The file a Windows command line runs: its program, or the DLL for rundll32/regsvr32.
    Best effort; never raises; "" when there is nothing."""
    table = {k.lower(): v for k, v in (env if env is not None else _env()).items()}
    text = expand(command.strip().replace("\x00", ""), table)
    program, rest = _first_path(text)
    program = _system_path(program, table)
    name = program.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if name in _DLL_HOSTS:
        args = rest
        while args.startswith(("/", "-")):  # regsvr32 /s /i:x ...
            args = args.split(" ", 1)[1].lstrip() if " " in args else ""
        dll, _ = _first_path(args.split(",", 1)[0]) if args else ("", "")
        if dll:
            return _system_path(dll, table)
    return program


def _entry(place: str, path: str, command: str, target_text: str) -> PersistenceEntry:
    targets = [t for t in (command_target(x) for x in target_text.split(",")) if t]
    return PersistenceEntry(place, path, 0, command, list(dict.fromkeys(targets)))


def parse_run_values(key: str, values: Iterable[tuple[str, str]]) -> list[PersistenceEntry]:
    """Entries for a Run-like key's (name, data) values; Winlogon and Windows keys keep only the
    values that start programs. Userinit and AppInit_DLLs lists give one target per item."""
    wanted = _VALUE_FILTER.get(key.rsplit("\\", 1)[-1].lower())
    out: list[PersistenceEntry] = []
    for name, data in values:
        data = str(data).strip()
        if not data or (wanted is not None and name.lower() not in wanted):
            continue
        # Userinit is comma separated, AppInit_DLLs comma or space separated; Run values are one
        # command line whose arguments may well contain commas (rundll32 x.dll,Entry).
        listed = name.lower() in ("userinit", "appinit_dlls")
        target_text = re.sub(r"[ ,]+", ",", data) if name.lower() == "appinit_dlls" else data
        entry = _entry("windows-run-key", key, f"{name} = {data}", target_text if listed else "")
        if not listed:
            target = command_target(data)
            entry.targets = [target] if target else []
        out.append(entry)
    return out


def parse_service(
    name: str, image_path: str, start: int, service_type: int
) -> PersistenceEntry | None:
    """An entry for an auto-start service or driver (Start 0 boot, 1 system, 2 automatic)."""
    if start not in (0, 1, 2) or not image_path.strip():
        return None
    kind = "driver" if service_type & 0x3 else "service"
    target = command_target(image_path)
    return PersistenceEntry(
        "windows-service",
        f"{SERVICES_KEY}\\{name}",
        0,
        f"{kind} {name} (start {start}): {image_path.strip()}",
        [target] if target else [],
    )


TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


def _child_text(elem: ET.Element, tag: str) -> str:
    for child in elem:
        if child.tag.rsplit("}", 1)[-1] == tag:
            return (child.text or "").strip()
    return ""


def parse_task_xml(path: str, xml_text: str) -> list[PersistenceEntry]:
    """One entry per Exec (and ComHandler) action of a Task Scheduler task. Raises InputError
    naming the file and line when the XML is broken."""
    try:
        root = ET.fromstring(xml_text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 0
        raise InputError(f"{path}: line {line}: not a Task Scheduler XML file: {exc}") from exc
    if root.tag.rsplit("}", 1)[-1] != "Task":
        raise InputError(f"{path}: line 1: not a Task Scheduler XML file (root <{root.tag}>)")
    out: list[PersistenceEntry] = []
    for elem in root.iter():
        tag = elem.tag.rsplit("}", 1)[-1]
        if tag == "Exec":
            program = _child_text(elem, "Command")
            args = _child_text(elem, "Arguments")
            if not program:
                continue
            shown = f'"{program}"' if " " in program and not program.startswith('"') else program
            command = f"{shown} {args}".strip()
            target = command_target(command)
            out.append(
                PersistenceEntry("windows-task", path, 0, command, [target] if target else [])
            )
        elif tag == "ComHandler":
            clsid = _child_text(elem, "ClassId")
            data = _child_text(elem, "Data")
            out.append(
                PersistenceEntry("windows-task", path, 0, f"ComHandler {clsid} {data}".strip(), [])
            )
    return out


def decode_task_file(data: bytes) -> str:
    """Task files are UTF-16 with a BOM as Windows writes them, UTF-8 when dropped by hand."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if len(data) > 1 and data[1:2] == b"\x00":
        return data.decode("utf-16-le", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def windows_entries() -> tuple[list[PersistenceEntry], list[str]]:
    """Every entry of this Windows system; on other systems ([], ["not Windows"])."""
    if sys.platform != "win32":
        return [], ["not Windows"]
    entries: list[PersistenceEntry] = []
    errors: list[str] = []
    _registry(entries, errors)
    _tasks(entries, errors)
    _startup_folders(entries, errors)
    return entries, errors


def _registry(entries: list[PersistenceEntry], errors: list[str]) -> None:
    if sys.platform != "win32":
        return
    import winreg

    def values(hive: int, sub: str) -> list[tuple[str, str]] | None:
        try:
            with winreg.OpenKey(hive, sub) as key:
                out = []
                for i in range(winreg.QueryInfoKey(key)[1]):
                    name, data, _ = winreg.EnumValue(key, i)
                    if isinstance(data, str):
                        out.append((name or "(default)", data))
                return out
        except FileNotFoundError:
            return None
        except OSError as exc:
            errors.append(f"{sub}: {exc}")
            return None

    # HKCU of a scanner running as SYSTEM is nobody's: read every loaded user hive instead.
    users: list[str] = []
    try:
        with winreg.OpenKey(winreg.HKEY_USERS, "") as hku:
            for i in range(winreg.QueryInfoKey(hku)[0]):
                sid = winreg.EnumKey(hku, i)
                if not sid.endswith("_Classes"):
                    users.append(sid)
    except OSError as exc:
        errors.append(f"HKEY_USERS: {exc}")
    for key in RUN_KEYS:
        hive_name, sub = key.split("\\", 1)
        if hive_name == "HKLM":
            found = values(winreg.HKEY_LOCAL_MACHINE, sub)
            if found:
                entries.extend(parse_run_values(key, found))
            continue
        for sid in users:
            found = values(winreg.HKEY_USERS, f"{sid}\\{sub}")
            if found:
                entries.extend(parse_run_values(f"HKU\\{sid}\\{sub}", found))
    _services(entries, errors)


def _services(entries: list[PersistenceEntry], errors: list[str]) -> None:
    if sys.platform != "win32":
        return
    import winreg

    sub = SERVICES_KEY.split("\\", 1)[1]
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, sub) as services:
            for i in range(winreg.QueryInfoKey(services)[0]):
                name = winreg.EnumKey(services, i)
                try:
                    with winreg.OpenKey(services, name) as svc:
                        image = winreg.QueryValueEx(svc, "ImagePath")[0]
                        start = winreg.QueryValueEx(svc, "Start")[0]
                        stype = winreg.QueryValueEx(svc, "Type")[0]
                except OSError:
                    continue  # no ImagePath: a service group or a settings key
                entry = parse_service(name, str(image), int(start), int(stype))
                if entry is not None:
                    entries.append(entry)
    except OSError as exc:
        errors.append(f"{SERVICES_KEY}: {exc}")


def _tasks(entries: list[PersistenceEntry], errors: list[str]) -> None:
    folder = Path(expand("%SystemRoot%")) / "System32" / "Tasks"
    for dirpath, _dirs, files in os.walk(folder, onerror=lambda e: errors.append(str(e))):
        for name in files:
            path = Path(dirpath) / name
            try:
                entries.extend(parse_task_xml(str(path), decode_task_file(path.read_bytes())))
            except (OSError, InputError) as exc:
                errors.append(f"{path}: {exc}" if isinstance(exc, OSError) else str(exc))


def _startup_folders(entries: list[PersistenceEntry], errors: list[str]) -> None:
    tail = Path("Microsoft") / "Windows" / "Start Menu" / "Programs" / "Startup"
    folders = [Path(expand("%ProgramData%")) / tail]
    users = Path(expand("%SystemDrive%") + "\\") / "Users"
    try:
        folders += [u / "AppData" / "Roaming" / tail for u in users.iterdir() if u.is_dir()]
    except OSError as exc:
        errors.append(f"{users}: {exc}")
    for folder in folders:
        try:
            items = sorted(p for p in folder.iterdir() if p.is_file())
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"{folder}: {exc}")
            continue
        for item in items:
            if item.name.lower() != "desktop.ini":
                entries.append(
                    PersistenceEntry("windows-startup", str(folder), 0, item.name, [str(item)])
                )
