"""Shared helpers for the interop scripts in this directory.

Only plumbing lives here (argument parsing, progress output, the final JSON
line, the watchdog, resource arithmetic). The Mesos client libraries are used
unmodified by each script, exactly as an ordinary user would use them.

Exit codes used by every script:
  0  success
  1  failure (cannot reach the master, error from the server, unexpected
     task state, library exception, ...)
  2  bad command line (argparse)
  3  timed out (the --timeout watchdog fired)
"""

import argparse
import json
import os
import socket
import sys
import threading
import time

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_TIMEOUT = 3

# Task states after which a task never changes again (TASK_LOST and
# TASK_GONE_BY_OPERATOR included: no agent will come back in these tests).
TERMINAL_STATES = frozenset([
    'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST',
    'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
])


def host_port(master):
    """'http://h:p/' or 'h:p' -> 'h:p' (what pymesos wants)."""
    m = master.strip()
    for prefix in ('http://', 'https://'):
        if m.startswith(prefix):
            m = m[len(prefix):]
    m = m.rstrip('/')
    if ':' not in m:
        m += ':5050'
    return m


def base_parser(description, default_timeout=60.0):
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--master', required=True,
                   help='master address, host:port (e.g. 127.0.0.1:5050)')
    p.add_argument('--timeout', type=float, default=default_timeout,
                   help='give up after this many seconds (default %(default)s)')
    return p


class Run(object):
    """Progress lines on stderr, ONE JSON line on stdout, watchdog.

    finish()/fail() may be called from any thread; the first call wins and
    the process ends with os._exit() so that library threads blocked in
    socket calls can never keep it alive.
    """

    def __init__(self, name, timeout, master=None):
        self.name = name
        self.timeout = timeout
        self.t0 = time.time()
        self.phase = 'starting'
        self.summary = {'script': name}
        if master is not None:
            self.summary['master'] = master
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._finished = False
        if timeout and timeout > 0:
            t = threading.Timer(timeout, self._on_timeout)
            t.daemon = True
            t.start()

    def elapsed(self):
        return time.time() - self.t0

    def log(self, msg):
        sys.stderr.write('[%s +%.1fs] %s\n' % (self.name, self.elapsed(), msg))
        sys.stderr.flush()

    def set_phase(self, phase):
        with self.lock:
            self.phase = phase
        self.log('phase: %s' % phase)

    def finish(self, ok, error=None, code=None):
        with self.lock:
            if self._finished:
                return
            self._finished = True
            out = {'ok': bool(ok)}
            if error is not None:
                error = str(error)
                if len(error) > 2000:
                    error = error[:2000] + '...(truncated)'
                out['error'] = error
                out['phase'] = self.phase
            out.update(self.summary)
            out['elapsed_seconds'] = round(self.elapsed(), 3)
            try:
                line = json.dumps(out, sort_keys=True, default=str)
            except Exception as e:  # never fail to report
                line = json.dumps({'ok': False, 'error': 'cannot encode summary: %s; original error: %s' % (e, error)})
            if ok:
                self.log('SUCCESS')
            else:
                self.log('FAILED: %s' % error)
            try:
                sys.stdout.write(line + '\n')
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(EXIT_OK if ok else (code if code is not None else EXIT_FAIL))

    def fail(self, error, code=EXIT_FAIL):
        self.finish(False, error=error, code=code)

    def _on_timeout(self):
        self.fail('timed out after %gs while %s' % (self.timeout, self.phase),
                  code=EXIT_TIMEOUT)

    def wait_for(self, predicate, what):
        """Wait (under self.cond) until predicate() is true. The watchdog
        ends the process if it never becomes true. Short waits keep the main
        thread responsive to exceptions pymesos re-raises in it."""
        with self.cond:
            self.phase = what
            while not predicate():
                self.cond.wait(0.2)

    def wait_until(self, predicate, seconds):
        """Like wait_for but gives up after `seconds`; returns predicate()."""
        deadline = time.time() + seconds
        with self.cond:
            while not predicate():
                left = deadline - time.time()
                if left <= 0:
                    return predicate()
                self.cond.wait(min(left, 0.2))
            return True

    def notify(self):
        with self.cond:
            self.cond.notify_all()

    def guard(self, what):
        """Decorator for library callbacks: turn an exception raised by our
        callback code (or by a driver call made from it) into one clean
        failure instead of a traceback inside the library's thread."""
        def deco(fn):
            def wrapper(*a, **kw):
                try:
                    return fn(*a, **kw)
                except Exception as e:
                    self.fail('%s: %s: %s' % (what, type(e).__name__, e))
            wrapper.__name__ = fn.__name__
            return wrapper
        return deco


def probe_tcp(run, hostport, wait=None):
    """Fail fast (exit 1) with a clear message when nothing listens at
    hostport, instead of letting the client libraries retry for a long time.
    Retries for up to `wait` seconds (default: 5 s, at most half of the
    --timeout) in case the server is just starting."""
    if wait is None:
        wait = min(5.0, (run.timeout or 10.0) / 2.0)
    host, port = hostport.rsplit(':', 1)
    try:
        port = int(port)
    except ValueError:
        run.fail('bad address %r: port is not a number' % hostport)
    deadline = time.time() + wait
    last = None
    while True:
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.close()
            return
        except OSError as e:
            last = e
        if time.time() >= deadline:
            break
        time.sleep(0.25)
    run.fail('cannot connect to %s: %s' % (hostport, getattr(last, 'strerror', None) or last))


def scalar(resources, name):
    """Sum of the scalar resource `name` in a Resource list."""
    total = 0.0
    for r in resources or []:
        if r.get('name') != name:
            continue
        if r.get('type', 'SCALAR') != 'SCALAR' or 'revocable' in r:
            continue
        total += float(r.get('scalar', {}).get('value', 0.0))
    return total


def fits(avail_cpus, avail_mem, cpus, mem):
    # Mesos scalars are fixed point with 0.001 precision.
    return avail_cpus + 1e-6 >= cpus and avail_mem + 1e-6 >= mem


def scalar_resources(cpus, mem):
    return [
        {'name': 'cpus', 'type': 'SCALAR', 'scalar': {'value': cpus}},
        {'name': 'mem', 'type': 'SCALAR', 'scalar': {'value': mem}},
    ]


def jid(x):
    """{'value': 'x'} -> 'x' (tolerant of plain strings and None)."""
    if isinstance(x, dict):
        return x.get('value')
    return x
