#!/usr/bin/env python3
"""package_deb: build the Debian package with CPack and check what an operator gets.

1. `cpack -G DEB` into a temporary directory: exactly synapse-spoa_<version>_<arch>.deb.
2. `dpkg-deb --contents`: the exact file list (the haproxy/ and grafana/dashboards/ files are
   read from the source tree), owners and modes; the control fields, computed Depends and the
   conffile.
3. A throwaway root: real `dpkg --root=ROOT --unpack` into a fresh dpkg database. Unpack, not
   install: configuring runs the maintainer scripts chrooted into ROOT, which would need a whole
   Debian system there (sh, adduser, getent: debootstrap). So dpkg's own view is checked
   (status, file list, the conffile registered and unpacked as config.yaml.dpkg-new, which the
   test then renames as configure would), and the scripts' logic separately, below.
4. The unpacked binary: `version` is the project's, `check-config` accepts the unpacked
   /etc/synapse-spoa/config.yaml, which is `print-default-config` with the snapshot in the
   state directory.
5. The unit: the required hardening settings, `systemd-analyze verify` (on a copy whose
   ExecStart points into ROOT, since verify checks that the binary exists) and the
   `systemd-analyze security --offline` exposure score, printed and held below a bound.
6. The maintainer scripts with every system command replaced by a stub that records its
   arguments: postinst creates the user and the statoverride and never starts or restarts the
   service inside a chroot, refuses DPKG_ROOT (chrootless) installs, and prerm stops nothing
   in a chroot. postrm purge is only syntax-checked: it removes /var/lib/synapse-spoa of the
   machine it runs on.

Environment (tests/package/CMakeLists.txt): SPOA_BUILD_DIR, SPOA_SOURCE_DIR, SPOA_CPACK,
SPOA_VERSION, SPOA_AGENT_BINARY. Exit 77 (skipped) only when a tool is missing, naming it.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import yaml

BUILD = os.environ["SPOA_BUILD_DIR"]
SOURCE = os.environ["SPOA_SOURCE_DIR"]
CPACK = os.environ["SPOA_CPACK"]
VERSION = os.environ["SPOA_VERSION"]
AGENT = os.environ["SPOA_AGENT_BINARY"]

# Tool -> the Debian package that provides it (scripts/setup installs them).
TOOLS = {
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "dpkg-shlibdeps": "dpkg-dev",
    "systemd-analyze": "systemd",
    "sh": "dash",
}

# The settings the unit must carry, exactly (README, "Debian package").
UNIT_REQUIRED = [
    "User=synapse-spoa",
    "Group=synapse-spoa",
    "ExecStart=/usr/bin/synapse-spoa run --config /etc/synapse-spoa/config.yaml",
    "ExecReload=kill -HUP $MAINPID",
    "Restart=on-failure",
    "StateDirectory=synapse-spoa",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet=",
    "SystemCallFilter=@system-service",
    "WantedBy=multi-user.target",
]
# `systemd-analyze security` exposure (0 = fully locked down, 10 = unprotected). The unit scores
# 1.1; what is left is inherent: it must open AF_INET/AF_INET6 sockets to any address.
MAX_EXPOSURE = 2.0

SNAPSHOT = "/var/lib/synapse-spoa/affinity.msgpack"
STUBBED = ["adduser", "deluser", "delgroup", "getent", "dpkg-statoverride", "deb-systemd-helper",
           "deb-systemd-invoke", "systemctl", "systemd-detect-virt"]


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def source_files(rel, pattern=None):
    top = os.path.join(SOURCE, rel)
    out = []
    for d, _, files in os.walk(top):
        for f in files:
            if pattern is None or re.fullmatch(pattern, f):
                out.append(os.path.relpath(os.path.join(d, f), top))
    return sorted(out)


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="spoa-deb-")
        try:
            cls._build()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def _build(cls):
        out = os.path.join(cls.tmp, "out")
        r = run([CPACK, "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"),
                 "-B", out], cwd=BUILD, check=False)
        if r.returncode != 0:
            raise AssertionError(f"cpack failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        cls.arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        cls.deb_name = f"synapse-spoa_{VERSION}_{cls.arch}.deb"
        debs = sorted(f for f in os.listdir(out) if f.endswith(".deb"))
        if debs != [cls.deb_name]:
            raise AssertionError(f"cpack made {debs}, expected [{cls.deb_name}]")
        cls.deb = os.path.join(out, cls.deb_name)
        print(f"built {cls.deb_name} ({os.path.getsize(cls.deb)} bytes)")

        # The throwaway root: an empty dpkg database is all `dpkg --root --unpack` needs.
        cls.root = os.path.join(cls.tmp, "root")
        admin = os.path.join(cls.root, "var/lib/dpkg")
        for d in ("info", "updates", "triggers"):
            os.makedirs(os.path.join(admin, d))
        for f in ("status", "available"):
            open(os.path.join(admin, f), "w").close()
        cmd = ["dpkg", f"--root={cls.root}", "--log=/dev/null", "--force-depends", "--unpack",
               cls.deb]
        if os.geteuid() != 0:
            cmd.insert(1, "--force-not-root")
        r = run(cmd, check=False)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

        # Unpacked, a new conffile waits as FILE.dpkg-new (that is dpkg treating it as a
        # conffile); configuring renames it before running postinst. Do that step here.
        conf = os.path.join(cls.root, "etc/synapse-spoa/config.yaml")
        cls.conffile_waited = os.path.exists(conf + ".dpkg-new") and not os.path.exists(conf)
        if cls.conffile_waited:
            os.rename(conf + ".dpkg-new", conf)

        cls.control = os.path.join(cls.tmp, "control")
        run(["dpkg-deb", "--control", cls.deb, cls.control])

    # -- 2. the archive -------------------------------------------------------------------------
    def contents(self):
        """path -> (mode string, owner) for every member of the data archive."""
        out = {}
        for line in run(["dpkg-deb", "--contents", self.deb]).stdout.splitlines():
            mode, owner, _size, _date, _time, path = line.split(None, 5)
            out[path.split(" -> ")[0]] = (mode, owner)
        return out

    def test_file_list(self):
        contents = self.contents()
        files = {p for p, (mode, _) in contents.items() if not mode.startswith("d")}
        expected = {
            "./usr/bin/synapse-spoa",
            "./etc/synapse-spoa/config.yaml",
            "./lib/systemd/system/synapse-spoa.service",
            "./usr/share/doc/synapse-spoa/README.md",
            "./usr/share/doc/synapse-spoa/copyright",
        }
        expected |= {"./usr/share/synapse-spoa/haproxy/" + f for f in source_files("haproxy")}
        expected |= {"./usr/share/synapse-spoa/grafana/" + f
                     for f in source_files("grafana/dashboards", r".*\.json")}
        self.assertEqual(sorted(files), sorted(expected))
        for path, (mode, owner) in contents.items():
            self.assertEqual(owner, "root/root", path)
        self.assertEqual(contents["./usr/bin/synapse-spoa"][0], "-rwxr-xr-x")
        self.assertEqual(contents["./etc/synapse-spoa/config.yaml"][0], "-rw-r-----")
        self.assertEqual(contents["./lib/systemd/system/synapse-spoa.service"][0], "-rw-r--r--")

    def test_control(self):
        def field(name):
            return run(["dpkg-deb", "--field", self.deb, name]).stdout.strip()

        self.assertEqual(field("Package"), "synapse-spoa")
        self.assertEqual(field("Version"), VERSION)
        self.assertEqual(field("Architecture"), self.arch)
        depends = [d.strip().split()[0] for d in field("Depends").split(",")]
        print("Depends:", field("Depends"))
        # Computed by dpkg-shlibdeps from the binary's NEEDED entries, plus the scripts' own.
        for pkg in ("adduser", "procps", "libc6", "libstdc++6"):
            self.assertIn(pkg, depends)
        self.assertTrue(any(d.startswith("libyaml-cpp") for d in depends), depends)
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/synapse-spoa/config.yaml"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, script)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755, script)
            run(["sh", "-n", path])

    # -- 3. dpkg's view of the throwaway root ---------------------------------------------------
    def test_dpkg_database(self):
        q = run(["dpkg-query", f"--root={self.root}", "-W",
                 "-f=${Status}\n${Version}\n${Conffiles}\n", "synapse-spoa"]).stdout.split("\n")
        self.assertEqual(q[0], "install ok unpacked")
        self.assertEqual(q[1], VERSION)
        # Registered; its checksum is recorded when the package is configured.
        self.assertEqual(q[2], " /etc/synapse-spoa/config.yaml newconffile")
        self.assertTrue(self.conffile_waited, "unpack left no config.yaml.dpkg-new")
        listed = set(run(["dpkg-query", f"--root={self.root}", "-L", "synapse-spoa"])
                     .stdout.split())
        for path in listed:
            self.assertTrue(os.path.lexists(self.root + path), path)
        archive = {p[1:].rstrip("/") or "/" for p in self.contents()}
        self.assertEqual(listed, archive)

    # -- 4. the binary and its config -----------------------------------------------------------
    def test_binary_and_config(self):
        agent = os.path.join(self.root, "usr/bin/synapse-spoa")
        conf = os.path.join(self.root, "etc/synapse-spoa/config.yaml")
        self.assertEqual(run([agent, "version"]).stdout.strip(), f"synapse-spoa {VERSION}")
        r = run([agent, "check-config", "--config", conf], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(conf) as f:
            packaged = yaml.safe_load(f)
        default = yaml.safe_load(run([AGENT, "print-default-config"]).stdout)
        self.assertEqual(packaged["placement"]["snapshot"], SNAPSHOT)
        default["placement"]["snapshot"] = SNAPSHOT
        self.assertEqual(packaged["control"]["socket"], "/run/synapse-spoa/ctl.sock")
        default["control"]["socket"] = "/run/synapse-spoa/ctl.sock"
        self.assertEqual(packaged, default)
        # The packaged binary is stripped: no DWARF sections left.
        with open(agent, "rb") as f:
            self.assertNotIn(b".debug_info", f.read())

    # -- 5. the unit ----------------------------------------------------------------------------
    def unit_copy(self):
        """The unit with ExecStart pointing into the throwaway root, for systemd-analyze."""
        with open(os.path.join(self.root, "lib/systemd/system/synapse-spoa.service")) as f:
            text = f.read()
        d = os.path.join(self.tmp, "units")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "synapse-spoa.service")
        with open(path, "w") as f:
            f.write(text.replace("ExecStart=/usr/bin/synapse-spoa",
                                 f"ExecStart={self.root}/usr/bin/synapse-spoa"))
        return path, text

    def test_unit_settings(self):
        _, text = self.unit_copy()
        lines = [ln.strip() for ln in text.splitlines()]
        for setting in UNIT_REQUIRED:
            self.assertIn(setting, lines)
        self.assertNotIn("DynamicUser=yes", lines)

    def test_systemd_analyze_verify(self):
        path, _ = self.unit_copy()
        r = run(["systemd-analyze", "verify", "--man=no", path], check=False)
        print("systemd-analyze verify:", r.returncode, (r.stdout + r.stderr).strip() or "(no output)")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Warnings about this unit are failures too; verify also loads the units it refers to
        # (multi-user.target, ...), whose own messages are not ours.
        mine = [ln for ln in (r.stdout + r.stderr).splitlines() if "synapse-spoa" in ln]
        self.assertEqual(mine, [])

    def test_systemd_analyze_security(self):
        path, _ = self.unit_copy()
        r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", path], check=False)
        out = r.stdout + r.stderr
        print(out)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
        self.assertIsNotNone(m, out)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE)

    # -- 6. the maintainer scripts --------------------------------------------------------------
    def scripts_env(self, name, detect_virt_rc):
        """A stub directory whose commands log their arguments; returns (env, log path)."""
        stubs = os.path.join(self.tmp, "stubs-" + name)
        os.makedirs(stubs)
        log = os.path.join(stubs, "calls.log")
        rcs = {"getent": 2, "systemd-detect-virt": detect_virt_rc}
        for cmd in STUBBED:
            rc = rcs.get(cmd, 0)
            body = f'#!/bin/sh\necho "{cmd} $*" >> "{log}"\n'
            if cmd == "dpkg-statoverride":
                body += '[ "$1" = --list ] && exit 1\n'  # no override yet
            if cmd == "deb-systemd-helper":
                # A fresh install: never installed, never enabled.
                body += 'case "$1 $2" in debian-installed*|"--quiet was-enabled") exit 1;; esac\n'
            body += f"exit {rc}\n"
            p = os.path.join(stubs, cmd)
            with open(p, "w") as f:
                f.write(body)
            os.chmod(p, 0o755)
        env = {"PATH": stubs + ":/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        return env, log

    def calls(self, log):
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().splitlines()

    def script(self, name):
        return os.path.join(self.control, name)

    def test_postinst_fresh_install(self):
        env, log = self.scripts_env("fresh", detect_virt_rc=0)
        r = run(["sh", self.script("postinst"), "configure", ""], env=env, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = self.calls(log)
        self.assertIn("adduser --system --group --quiet --home /var/lib/synapse-spoa "
                      "--no-create-home --gecos synapse-spoa agent synapse-spoa", calls)
        self.assertIn("dpkg-statoverride --update --add root synapse-spoa 0640 "
                      "/etc/synapse-spoa/config.yaml", calls)
        self.assertIn("deb-systemd-helper update-state synapse-spoa.service", calls)
        self.assertNotIn("deb-systemd-helper enable synapse-spoa.service", calls)
        self.assertFalse([c for c in calls if c.startswith(("systemctl", "deb-systemd-invoke"))],
                         calls)

    def test_postinst_upgrade_in_chroot_restarts_nothing(self):
        env, log = self.scripts_env("upgrade", detect_virt_rc=0)  # systemd-detect-virt: chroot
        r = run(["sh", self.script("postinst"), "configure", "0.0.1"], env=env, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = self.calls(log)
        self.assertFalse([c for c in calls if c.startswith(("systemctl", "deb-systemd-invoke"))],
                         calls)

    def test_postinst_refuses_chrootless(self):
        env, log = self.scripts_env("chrootless", detect_virt_rc=1)
        env["DPKG_ROOT"] = self.root
        r = run(["sh", self.script("postinst"), "configure", ""], env=env, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--force-script-chrootless is not supported", r.stderr)
        self.assertEqual(self.calls(log), [])

    def test_prerm_in_chroot_stops_nothing(self):
        env, log = self.scripts_env("prerm", detect_virt_rc=0)
        r = run(["sh", self.script("prerm"), "remove"], env=env, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse([c for c in self.calls(log) if c.startswith("deb-systemd-invoke")])


def main():
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items()
               if shutil.which(tool) is None]
    if not os.access(CPACK, os.X_OK):
        missing.append(f"{CPACK} (Debian package cmake)")
    if missing:
        print("SKIP: missing " + ", ".join(missing) + "; scripts/setup installs them")
        return 77
    if not os.access(AGENT, os.X_OK):
        print(f"FAIL: {AGENT} is not built: cmake --build {BUILD} --target synapse-spoa")
        return 1
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
