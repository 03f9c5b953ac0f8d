#!/usr/bin/python3
"""pgcpu.py [BEFORE] -- CPU seconds PostgreSQL has used: every live server process, plus what
the postmaster has collected from children that have exited (a psql session's backend is
gone by the time psql returns), for the cluster of $AEGIS_STACK_DIR only. With the number
printed by an earlier call, prints instead the CPU seconds spent since then."""
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def total(stack=None):
    """CPU seconds of the cluster whose data folder is under stack (AEGIS_STACK_DIR)."""
    marker = ((stack or os.environ["AEGIS_STACK_DIR"]).rstrip("/") + "/pg/data").encode()
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[pid] = (cmd, fields)
    master = next((pid for pid, (cmd, _) in procs.items()
                   if b"postgres\0" in cmd + b"\0" and marker in cmd), None)
    if master is None:
        sys.exit(f"no postmaster of {marker.decode()}")
    f = procs[master][1]
    cpu = int(f[13]) + int(f[14])                  # exited children: cutime, cstime
    for cmd, f in procs.values():
        if f[1] == master:
            cpu += int(f[11]) + int(f[12])         # live children: utime, stime
    return cpu / TICK


if __name__ == "__main__":
    now = total()
    print(round(now - float(sys.argv[1]), 2) if len(sys.argv) > 1 else now)
