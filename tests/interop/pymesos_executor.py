#!/usr/bin/env python3
"""pymesos 0.3.15 custom executor used by pymesos_custom_executor.py.

Started BY THE AGENT (cwd = sandbox) with the MESOS_* environment:
MESOS_AGENT_ENDPOINT (ip:port), MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID and
optionally MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD / MESOS_CHECKPOINT.

  <python> tests/interop/pymesos_executor.py [--timeout 300]

For every LAUNCH it sends TASK_RUNNING, prints `executor-ran <task_id>` on
stdout (the sandbox's stdout file), sends the framework message
`hello <task_id>` (base64-encoded with pymesos.encode_data, as pymesos'
executor driver sends `data` as given), optionally waits `sleep` seconds taken
from the task's data (JSON, base64), then sends TASK_FINISHED. KILL -> TASK_KILLED.
A framework message `ping X` from the scheduler is answered with `pong X`.
SHUTDOWN (or losing the agent) ends the process: pymesos then kills the
executor's process group itself after the grace period.

Progress goes to stderr (sandbox stderr). A final JSON line goes to stdout at
shutdown (best effort: pymesos may SIGKILL the process group first).
Exit 0 after SHUTDOWN, 1 on error (missing environment, agent unreachable,
ERROR event), 3 if --timeout passes without a SHUTDOWN (a safety net so that a
lost executor never outlives the test run).
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_common import EXIT_OK, Run, probe_tcp  # noqa: E402


def main():
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--timeout', type=float, default=300.0,
                   help='exit (code 3) if no SHUTDOWN arrives within this many seconds (default 300)')
    args = p.parse_args()

    run = Run('pymesos_executor', args.timeout)
    missing = [k for k in ('MESOS_AGENT_ENDPOINT', 'MESOS_FRAMEWORK_ID', 'MESOS_EXECUTOR_ID')
               if not os.environ.get(k)]
    if missing:
        run.fail('missing environment variable(s) %s: this script must be started by a Mesos agent'
                 % ', '.join(missing))
    env = {k: v for k, v in os.environ.items() if k.startswith('MESOS_')}
    run.log('environment: %s' % ' '.join('%s=%s' % kv for kv in sorted(env.items())))
    run.log('cwd=%s pid=%d pgid=%d sid=%d' % (os.getcwd(), os.getpid(), os.getpgrp(), os.getsid(0)))
    if os.getpgrp() != os.getpid():
        # pymesos kills its whole process group on SHUTDOWN (os.killpg(0)).
        run.log('WARNING: not a process group leader; pymesos SHUTDOWN will SIGKILL group %d'
                % os.getpgrp())
    run.summary.update({
        'executor_id': os.environ['MESOS_EXECUTOR_ID'],
        'framework_id': os.environ['MESOS_FRAMEWORK_ID'],
        'agent_endpoint': os.environ['MESOS_AGENT_ENDPOINT'],
    })

    run.set_phase('probing agent %s' % os.environ['MESOS_AGENT_ENDPOINT'])
    probe_tcp(run, os.environ['MESOS_AGENT_ENDPOINT'])

    try:
        from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data
    except ImportError as e:
        run.fail('cannot import pymesos: %s' % e)

    st = {'tasks': {}, 'kill': {}, 'messages_in': [], 'shutdown': False}
    run.summary['tasks'] = st['tasks']
    run.summary['messages_in'] = st['messages_in']

    def update(driver, task_id, state, message=None):
        status = {'task_id': {'value': task_id}, 'state': state}
        if message:
            status['message'] = message
        driver.sendStatusUpdate(status)
        with run.cond:
            st['tasks'].setdefault(task_id, []).append(state)
        run.log('sent %s for %s' % (state, task_id))

    def run_task(driver, task):
        tid = task['task_id']['value']
        try:
            update(driver, tid, 'TASK_RUNNING')
            sys.stdout.write('executor-ran %s\n' % tid)
            sys.stdout.flush()
            driver.sendFrameworkMessage(encode_data(('hello %s' % tid).encode('utf-8')))
            run.log('sent framework message "hello %s"' % tid)
            sleep = 0.0
            if task.get('data'):
                try:
                    sleep = float(json.loads(decode_data(task['data']).decode('utf-8')).get('sleep', 0))
                except Exception as e:
                    run.log('ignoring undecodable task data: %s' % e)
            killed = st['kill'][tid].wait(sleep) if sleep > 0 else st['kill'][tid].is_set()
            if killed:
                update(driver, tid, 'TASK_KILLED', 'killed by the scheduler')
            else:
                update(driver, tid, 'TASK_FINISHED', 'pymesos interop executor done')
        except Exception as e:
            run.log('task %s: %s: %s' % (tid, type(e).__name__, e))
            try:
                update(driver, tid, 'TASK_FAILED', '%s: %s' % (type(e).__name__, e))
            except Exception:
                pass

    class InteropExecutor(Executor):
        def registered(self, driver, executor_info, framework_info, agent_info):
            run.log('registered: executor %s of framework %s (%s) on agent %s (%s)' % (
                executor_info.get('executor_id', {}).get('value'),
                framework_info.get('id', {}).get('value'), framework_info.get('name'),
                agent_info.get('id', {}).get('value'), agent_info.get('hostname')))
            run.set_phase('registered, waiting for tasks')

        def reregistered(self, driver, agent_info):
            run.log('re-registered with agent %s' % agent_info.get('id', {}).get('value'))

        def disconnected(self, driver):
            run.log('disconnected from the agent')

        def launchTask(self, driver, task):
            tid = task['task_id']['value']
            run.log('LAUNCH %s (%s)' % (tid, task.get('name')))
            with run.cond:
                st['kill'][tid] = threading.Event()
            t = threading.Thread(target=run_task, args=(driver, task), name='task-%s' % tid)
            t.daemon = True
            t.start()

        def killTask(self, driver, task_id):
            tid = task_id['value']
            run.log('KILL %s' % tid)
            with run.cond:
                ev = st['kill'].get(tid)
                done = any(s in ('TASK_FINISHED', 'TASK_KILLED', 'TASK_FAILED')
                           for s in st['tasks'].get(tid, []))
            if done:
                run.log('task %s already terminal: ignoring KILL' % tid)
                return
            if ev is not None:
                ev.set()  # run_task sends TASK_KILLED (or has just sent TASK_FINISHED)
            else:
                # Unknown task: still answer with a terminal update.
                def answer():
                    try:
                        update(driver, tid, 'TASK_KILLED', 'kill of a task that is not running')
                    except Exception as e:
                        run.log('cannot send TASK_KILLED for %s: %s' % (tid, e))
                threading.Thread(target=answer, daemon=True).start()

        def frameworkMessage(self, driver, message):
            text = decode_data(message).decode('utf-8', 'replace')
            run.log('framework message from the scheduler: %r' % text)
            with run.cond:
                st['messages_in'].append(text)
            if text.startswith('ping '):
                def answer():
                    try:
                        driver.sendFrameworkMessage(encode_data(('pong ' + text[5:]).encode('utf-8')))
                        run.log('sent framework message "pong %s"' % text[5:])
                    except Exception as e:
                        run.log('cannot answer ping: %s' % e)
                threading.Thread(target=answer, daemon=True).start()

        def shutdown(self, driver):
            run.log('SHUTDOWN')
            with run.cond:
                st['shutdown'] = True
            run.summary['shutdown'] = True
            # pymesos SIGKILLs our process group after the grace period; the
            # main thread reports as soon as the driver stops.

        def error(self, driver, message):
            run.fail('ERROR event from the agent: %s' % message)

    driver = MesosExecutorDriver(InteropExecutor(), use_addict=True)
    run.set_phase('subscribing to the agent')
    try:
        driver.start()
        driver.join()
        # pymesos re-raises IO-thread exceptions in the main thread through a
        # simulated SIGINT; give it a moment to arrive inside this try block.
        time.sleep(0.1)
    except BaseException as e:
        run.fail('pymesos executor driver aborted: %s: %s' % (type(e).__name__, e))
    if not st['shutdown']:
        run.fail('executor driver stopped without SHUTDOWN or disconnection')
    run.finish(True, code=EXIT_OK)


if __name__ == '__main__':
    main()
