#!/usr/bin/env python3
"""Runs the integration test modules in a few parallel processes (most of their time is spent
waiting on timeouts and sleeps, not on CPU), longest first, and prints each module's result and
a closing "integration: N passed, N failed" line. Exit status 1 if any test failed.
Usage: run-integration.py [-j JOBS] (SUBMITD_BUILD selects the build, as for the tests)."""
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import time

# Rough wall time of each module in seconds (the slowest first keeps the pool busy).
WEIGHT = {"test_oauth": 60, "test_crash": 30, "test_smtp_robustness": 30, "test_doctor": 25,
          "test_doctor_scripted": 25, "test_submitctl": 25, "test_smtp_auth": 20,
          "test_limits": 15, "test_doctor_postfix": 15, "test_app_passwords": 12}


def run(module):
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "unittest", "-v", "tests.integration." + module],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return module, p.returncode, p.stdout, time.monotonic() - start


def main():
    jobs = 3
    if len(sys.argv) == 3 and sys.argv[1] == "-j":
        jobs = int(sys.argv[2])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    modules = sorted((os.path.basename(f)[:-3] for f in glob.glob("tests/integration/test_*.py")),
                     key=lambda m: -WEIGHT.get(m, 5))
    passed = failed = skipped = 0
    bad = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for module, rc, out, secs in pool.map(run, modules):
            ran = re.search(r"^Ran (\d+) tests?", out, re.M)
            n = int(ran.group(1)) if ran else 0
            fails = re.search(r"^FAILED \((.*)\)", out, re.M)
            nfail = sum(int(x) for x in re.findall(r"(?:failures|errors)=(\d+)",
                                                    fails.group(1))) if fails else 0
            nskip = re.search(r"skipped=(\d+)", out)
            nskip = int(nskip.group(1)) if nskip else 0
            if rc != 0 and nfail == 0:
                nfail = 1  # it crashed or ran nothing
            passed += n - nfail - nskip
            failed += nfail
            skipped += nskip
            status = "ok" if rc == 0 else "FAILED"
            print("integration: %-28s %3d tests %6.1f s  %s" % (module, n, secs, status),
                  flush=True)
            if rc != 0:
                bad.append((module, out))
    for module, out in bad:
        print("\n===== %s =====\n%s" % (module, out[-20000:]))
    print("integration: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
