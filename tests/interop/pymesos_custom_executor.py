#!/usr/bin/env python3
"""pymesos 0.3.15 scheduler launching tasks on a custom pymesos executor.

  python tests/interop/pymesos_custom_executor.py --master 127.0.0.1:5050 \
      [--tasks 2] [--cpus 0.1] [--mem 32] [--exec-cpus 0.1] [--exec-mem 32] \
      [--ping] [--timeout 60]

Each task carries an ExecutorInfo (one executor per task) whose command runs
pymesos_executor.py (next to this file) with this script's interpreter
(sys.executable), shell command string. The agent must start it with the
MESOS_* environment, in its own process group, with cwd = sandbox.
Waits until every task is TASK_FINISHED and a framework message
`hello <task_id>` (base64 data, decoded with pymesos.decode_data) arrived from
every executor. With --ping it also sends `ping <task_id>` to each executor
(scheduler MESSAGE call) and waits for `pong <task_id>` back.
Then driver.stop() (TEARDOWN: the agent must SHUTDOWN the executors).

Progress goes to stderr; one JSON line goes to stdout. Exit 0 on success,
1 on failure, 2 on bad usage, 3 on timeout.
"""

import json
import os
import shlex
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_common import (  # noqa: E402
    EXIT_FAIL, TERMINAL_STATES, Run, base_parser, fits, host_port, probe_tcp,
    scalar, scalar_resources)

EXECUTOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pymesos_executor.py')


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument('--tasks', type=int, default=2, help='number of tasks/executors (default 2)')
    p.add_argument('--cpus', type=float, default=0.1, help='cpus per task (default 0.1)')
    p.add_argument('--mem', type=float, default=32.0, help='mem (MB) per task (default 32)')
    p.add_argument('--exec-cpus', type=float, default=0.1, help='cpus per executor (default 0.1)')
    p.add_argument('--exec-mem', type=float, default=32.0, help='mem (MB) per executor (default 32)')
    p.add_argument('--task-sleep', type=float, default=0.0,
                   help='seconds each task stays TASK_RUNNING in the executor (default 0)')
    p.add_argument('--ping', action='store_true',
                   help='also send "ping <task>" to every executor and expect "pong <task>"')
    p.add_argument('--refuse-seconds', type=float, default=30.0,
                   help='refuse_seconds when declining unused offers (default 30)')
    p.add_argument('--executor-timeout', type=float, default=None,
                   help='--timeout passed to the executors (default: --timeout + 60)')
    args = p.parse_args()

    master = host_port(args.master)
    run = Run('pymesos_custom_executor', args.timeout, master=master)
    run.set_phase('probing %s' % master)
    probe_tcp(run, master)

    try:
        from addict import Dict
        from pymesos import MesosSchedulerDriver, Scheduler, decode_data, encode_data
    except ImportError as e:
        run.fail('cannot import pymesos (run .ci/python-env.sh and use its python): %s' % e)

    rid = uuid.uuid4().hex[:8]
    task_ids = ['interop-exec-task-%d-%s' % (i, rid) for i in range(args.tasks)]
    executor_of = {t: 'interop-executor-%d-%s' % (i, rid) for i, t in enumerate(task_ids)}
    exec_timeout = args.executor_timeout if args.executor_timeout is not None else args.timeout + 60
    executor_cmd = '%s %s --timeout %g' % (
        shlex.quote(sys.executable), shlex.quote(EXECUTOR_SCRIPT), exec_timeout)

    st = {
        'registered': False, 'pending': list(task_ids), 'states': {},
        'messages': {},      # task id -> decoded "hello ..." text
        'pongs': {},         # task id -> decoded "pong ..." text
        'pinged': set(), 'agent_of': {}, 'other_messages': [],
        'offers': 0, 'declined': 0, 'accepted': 0,
        'executors_lost': [], 'disconnects': 0, 'stopping': False,
    }
    run.summary.update({'tasks': st['states'], 'messages': st['messages'],
                        'executor_command': executor_cmd})

    def state_of(tid):
        s = st['states'].get(tid)
        return s[-1] if s else None

    def make_executor(tid):
        executor = Dict()
        executor.executor_id.value = executor_of[tid]
        executor.name = 'pymesos interop executor for %s' % tid
        executor.command.value = executor_cmd
        executor.command.shell = True
        executor.resources = scalar_resources(args.exec_cpus, args.exec_mem)
        return executor

    class CustomExecutorScheduler(Scheduler):
        @run.guard('registered callback')
        def registered(self, driver, framework_id, master_info):
            run.log('SUBSCRIBED as framework %s' % framework_id.value)
            with run.cond:
                st['registered'] = True
                run.summary['framework_id'] = framework_id.value
                run.summary['master_version'] = master_info.get('version')
                run.cond.notify_all()

        def disconnected(self, driver):
            with run.cond:
                if not st['stopping']:
                    st['disconnects'] += 1
                    run.log('disconnected from the master')

        @run.guard('resourceOffers callback')
        def resourceOffers(self, driver, offers):
            need_c, need_m = args.cpus + args.exec_cpus, args.mem + args.exec_mem
            for offer in offers:
                res = offer.get('resources', [])
                cpus, mem = scalar(res, 'cpus'), scalar(res, 'mem')
                launch = []
                with run.cond:
                    st['offers'] += 1
                    while st['pending'] and fits(cpus, mem, need_c, need_m):
                        tid = st['pending'].pop(0)
                        launch.append(tid)
                        st['states'].setdefault(tid, [])
                        st['agent_of'][tid] = offer.agent_id.value
                        cpus -= need_c
                        mem -= need_m
                    more_needed = bool(st['pending'])
                    st['accepted' if launch else 'declined'] += 1
                run.log('offer %s from agent %s: cpus=%g mem=%g -> %s' % (
                    offer.id.value, offer.agent_id.value, scalar(res, 'cpus'), scalar(res, 'mem'),
                    ('launch %s' % launch) if launch else 'decline'))
                if not launch:
                    driver.declineOffer(offer.id, filters={'refuse_seconds': args.refuse_seconds})
                    continue
                tasks = []
                for tid in launch:
                    task = Dict()
                    task.task_id.value = tid
                    task.agent_id.value = offer.agent_id.value
                    task.name = 'pymesos interop custom-executor task %s' % tid
                    task.executor = make_executor(tid)
                    task.resources = scalar_resources(args.cpus, args.mem)
                    task.data = encode_data(json.dumps({'sleep': args.task_sleep}).encode('utf-8'))
                    tasks.append(task)
                refuse = 0.0 if more_needed else args.refuse_seconds
                driver.launchTasks(offer.id, tasks, filters={'refuse_seconds': refuse})

        @run.guard('statusUpdate callback')
        def statusUpdate(self, driver, status):
            tid = status.task_id.value
            state = status.state
            run.log('update: %s %s%s%s' % (
                tid, state,
                (' reason=%s' % status['reason']) if 'reason' in status else '',
                (' message=%r' % status['message']) if 'message' in status else ''))
            with run.cond:
                st['states'].setdefault(tid, []).append(state)
                run.cond.notify_all()
            if tid in executor_of and state in TERMINAL_STATES and state != 'TASK_FINISHED':
                run.fail('task %s ended in %s (reason=%s, message=%r)' % (
                    tid, state, status.get('reason'), status.get('message')))

        @run.guard('frameworkMessage callback')
        def frameworkMessage(self, driver, executor_id, agent_id, message):
            # pymesos passes `data` through undecoded (base64 text).
            text = decode_data(message).decode('utf-8', 'replace')
            eid = executor_id.get('value')
            run.log('framework message from executor %s on agent %s: %r' % (
                eid, agent_id.get('value'), text))
            to_ping = None
            with run.cond:
                tid = next((t for t, e in executor_of.items() if e == eid), None)
                if tid is None:
                    st['other_messages'].append({'executor_id': eid, 'data': text})
                elif text == 'hello %s' % tid:
                    st['messages'][tid] = text
                    if args.ping and tid not in st['pinged']:
                        st['pinged'].add(tid)
                        to_ping = tid
                elif text == 'pong %s' % tid:
                    st['pongs'][tid] = text
                else:
                    st['other_messages'].append({'executor_id': eid, 'data': text})
                run.cond.notify_all()
            if to_ping is not None:
                driver.sendFrameworkMessage(executor_id, agent_id,
                                            encode_data(('ping %s' % to_ping).encode('utf-8')))
                run.log('sent "ping %s" to executor %s' % (to_ping, eid))

        def executorLost(self, driver, executor_id, agent_id, status):
            with run.cond:
                st['executors_lost'].append({'executor_id': executor_id.get('value'),
                                             'agent_id': agent_id.get('value'), 'status': status})
            run.log('executor lost: %s status=%s' % (executor_id.get('value'), status))

        def slaveLost(self, driver, agent_id):
            run.log('agent lost: %s' % agent_id.get('value'))

        def error(self, driver, message):
            run.fail('ERROR event from the master: %s' % message)

    framework = Dict()
    framework.user = 'root'
    framework.name = 'pymesos-interop-custom-executor'
    framework.failover_timeout = 60
    framework.hostname = socket.gethostname()
    driver = MesosSchedulerDriver(CustomExecutorScheduler(), framework, master,
                                  use_addict=True, timeout=args.timeout + 30)

    def all_done():
        ok = all(state_of(t) == 'TASK_FINISHED' and t in st['messages'] for t in task_ids)
        if args.ping:
            ok = ok and all(t in st['pongs'] for t in task_ids)
        return ok

    try:
        run.set_phase('subscribing')
        driver.start()
        run.wait_for(lambda: st['registered'], 'waiting for SUBSCRIBED')
        run.wait_for(all_done, 'waiting for %d tasks to finish with a framework message each%s' % (
            args.tasks, ' and a pong' if args.ping else ''))
        run.log('all tasks finished, all messages received')
        run.set_phase('stopping (TEARDOWN)')
        with run.cond:
            st['stopping'] = True
        driver.stop()
        driver.join()
        time.sleep(0.1)  # let a re-raised IO-thread exception arrive in this try block
        teardown_ok = driver.framework_id is None
        with run.cond:
            run.summary.update({
                'finished': sum(1 for t in task_ids if state_of(t) == 'TASK_FINISHED'),
                'executors': {t: executor_of[t] for t in task_ids},
                'agents': dict(st['agent_of']),
                'pongs': st['pongs'] if args.ping else None,
                'other_messages': st['other_messages'],
                'executors_lost': st['executors_lost'],
                'offers_received': st['offers'], 'offers_declined': st['declined'],
                'offers_accepted': st['accepted'], 'disconnects': st['disconnects'],
                'teardown_ok': teardown_ok,
            })
        if not teardown_ok:
            run.fail('TEARDOWN was not accepted by the master (see the pymesos log above)')
        run.finish(True)
    except KeyboardInterrupt:
        run.fail('interrupted', code=EXIT_FAIL)
    except BaseException as e:
        run.fail('pymesos driver aborted: %s: %s' % (type(e).__name__, e))


if __name__ == '__main__':
    main()
