"""haproxy/haproxy.cfg (and the spoe-synapse.conf it loads) passes `haproxy -c -dW` — warnings
are fatal — on the HAProxy the tests drive (SPOA_HAPROXY: the host's 2.6, or 3.2 from the sid
chroot through scripts/haproxy3), with the integration harness's environment (every address a
free loopback port), once as the tests run it and once with SPOA_HAPROXY_LOG_ALL defined."""

import os
import subprocess
import unittest

from harness import HAPROXY, REFERENCE_WORKERS, SOURCE, free_port, haproxy_env, haproxy_version

CFG = SOURCE / "haproxy" / "haproxy.cfg"


class HAProxyConfigCheck(unittest.TestCase):
    def check(self, **extra):
        env = haproxy_env(free_port(), free_port(), free_port(),
                          {name: free_port() for name, pool in REFERENCE_WORKERS if pool})
        env.update(extra)
        r = subprocess.run([HAPROXY, "-c", "-dW", "-f", str(CFG)], env=env, capture_output=True,
                           text=True, timeout=60)
        out = r.stdout + r.stderr
        print(f"{HAPROXY} -c -dW -f {CFG} {extra or ''}: exit {r.returncode}\n{out}")
        self.assertEqual(r.returncode, 0, out)
        self.assertNotIn("[WARNING]", out)
        self.assertNotIn("[ALERT]", out)

    def test_version_is_the_one_registered(self):
        major, minor = haproxy_version()
        print(f"HAProxy {major}.{minor} from {HAPROXY}")
        # SPOA_HAPROXY_EXPECT: what the ctest registration promises (2.6 for *_26, 3.2 for *_32).
        want = os.environ.get("SPOA_HAPROXY_EXPECT")
        if want:
            self.assertEqual(f"{major}.{minor}", want)
        self.assertIn((major, minor), [(2, 6), (3, 2)])

    def test_check_warnings_fatal(self):
        self.check()

    def test_check_warnings_fatal_log_all(self):
        self.check(SPOA_HAPROXY_LOG_ALL="1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
