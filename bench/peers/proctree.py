#!/usr/bin/env python3
"""proctree.py: CPU time and resident memory of a server made of several processes, for
bench/peers.sh. A server is the process trees under the given root PIDs (Postfix's master and
Dovecot's master; OpenSMTPD's parent; submitd).

  proctree.py cpu PID...           prints the CPU ms so far: utime + stime + cutime + cstime of
                                   every live process in the trees (cutime/cstime hold the time
                                   of children that already exited and were reaped, such as
                                   Postfix smtpd processes that reached max_use)
  proctree.py mem PID...           prints the memory of the trees now: "PSS RSS PROCESSES", the
                                   sums in KiB and the number of processes (scenario d)
  proctree.py peak FILE PID...     samples the memory of the trees every 0.1 s until SIGTERM and
                                   keeps the peaks in FILE: "PSS RSS" in KiB. PSS (proportional
                                   set size, /proc/PID/smaps_rollup) counts a page shared by N
                                   processes as 1/N in each, so its sum is the memory the server
                                   really uses; the RSS sum counts shared pages (libraries, the
                                   many smtpd processes of Postfix) once per process.
"""
import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def processes():
    """{pid: (ppid, cpu_ticks, rss_kib)} of every process readable now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        rest = stat[stat.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): ppid is field 4, utime..cstime 14..17, rss 24
        out[int(name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]),
                          int(rest[21]) * PAGE_KIB)
    return out


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass  # exited meanwhile
    return 0


def tree(procs, roots):
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in procs]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "cpu":
        roots = [int(x) for x in sys.argv[2:]]
        procs = processes()
        print("%.1f" % (sum(procs[p][1] for p in tree(procs, roots)) * 1000.0 / TICK))
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "mem":
        roots = [int(x) for x in sys.argv[2:]]
        procs = processes()
        pids = tree(procs, roots)
        print("%d %d %d" % (sum(pss_kib(p) for p in pids), sum(procs[p][2] for p in pids),
                            len(pids)))
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "peak":
        path, roots = sys.argv[2], [int(x) for x in sys.argv[3:]]
        running = [True]
        signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
        peak_pss = peak_rss = 0
        while running[0]:
            procs = processes()
            pids = tree(procs, roots)
            rss = sum(procs[p][2] for p in pids)
            pss = sum(pss_kib(p) for p in pids)
            if rss > peak_rss or pss > peak_pss:
                peak_rss, peak_pss = max(rss, peak_rss), max(pss, peak_pss)
                with open(path + ".tmp", "w") as f:
                    f.write("%d %d\n" % (peak_pss, peak_rss))
                os.replace(path + ".tmp", path)
            time.sleep(0.1)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
