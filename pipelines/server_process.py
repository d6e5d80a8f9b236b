"""Run a server as a child process that never outlives us.

The child runs in its own process group, its own children with it (the MLflow CLI starts uvicorn).
On SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal closed) the whole group is stopped and waited
for. If we die without a chance to clean up (`kill -9`), Linux's parent-death signal sends the child
SIGTERM, which the MLflow CLI passes on to uvicorn (which has the same signal set on its own parent).
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from shared.errors import Interrupted

STOP_SECONDS = 15
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def run_until_stopped(command, env=None, hide=None):
    """Run `command` in its own process group until it exits or we get a stop signal; then stop the group.

    `hide`: a compiled pattern; lines of the child's output that it matches are not shown (the rest go
    to our stderr). Returns the server's exit code, 0 after Ctrl-C (the way to stop a UI), else 128 + the
    signal number (143 after SIGTERM, 129 after SIGHUP).
    """
    def on_signal(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    server = None
    try:
        output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if hide else {}
        server = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=die_with_parent(), **output)
        if hide:
            threading.Thread(target=_show_lines, args=(server.stdout, hide), daemon=True).start()
        return server.wait()
    except Interrupted as interrupt:
        return 0 if interrupt.signal_name == "SIGINT" else interrupt.exit_code
    finally:
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if server is not None:
            stop_group(server)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _show_lines(stream, hide):
    for line in iter(stream.readline, b""):
        text = line.decode(errors="replace")
        if not hide.search(text):
            sys.stderr.write(text)
            sys.stderr.flush()


def die_with_parent(signum=signal.SIGTERM):
    """A `preexec_fn`: the child gets `signum` when this process dies, however it dies (Linux; None elsewhere)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    return lambda: _set_parent_death_signal(prctl, parent, signum)


def set_parent_death_signal(signum=signal.SIGTERM):
    """Have this process get `signum` when its parent dies (Linux; a no-op elsewhere)."""
    prctl = _prctl()
    if prctl is not None:
        _set_parent_death_signal(prctl, os.getppid(), signum)


def _set_parent_death_signal(prctl, parent, signum):
    prctl(PR_SET_PDEATHSIG, int(signum))
    if os.getppid() != parent:  # the parent died before the signal was set: nobody will send it
        os.kill(os.getpid(), signum)


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def stop_group(process, timeout=STOP_SECONDS):
    """SIGTERM the process group of `process`, wait for all of it, SIGKILL what is left after `timeout`."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        if _wait_group(process, timeout):
            break
    process.poll()


def _wait_group(process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the leader
        if not group_alive(process.pid):
            return True
        time.sleep(0.2)
    return False


def group_alive(pgid):
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in filter(str.isdigit, entries):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
