#!/usr/bin/env python3
"""pymesos 0.3.15 scheduler interop test (command tasks, kill, reconcile).

  python tests/interop/pymesos_scheduler.py --master 127.0.0.1:5050 \
      [--tasks 3] [--cmd 'echo hi'] [--cpus 0.1] [--mem 32] [--timeout 60]

Flow: SUBSCRIBE -> launch --tasks command tasks from the offers received
(several per offer when they fit; unused offers are declined with
--refuse-seconds) -> all reach TASK_FINISHED -> REVIVE -> launch one
`sleep 1000` task -> TASK_RUNNING -> implicit reconciliation (RECONCILE with
no tasks; expects an UPDATE without uuid for the running task) -> KILL ->
TASK_KILLED -> explicit reconciliation of a made-up task id (expects an UPDATE
for it; its state is recorded, Mesos answers TASK_LOST to a framework that is
not partition-aware) -> driver.stop() (TEARDOWN).

Progress goes to stderr; one JSON line goes to stdout. Exit 0 on success,
1 on failure, 2 on bad usage, 3 on timeout.
"""

import os
import socket
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_common import (  # noqa: E402
    EXIT_FAIL, TERMINAL_STATES, Run, base_parser, fits, host_port,
    probe_tcp, scalar, scalar_resources)


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument('--tasks', type=int, default=3, help='number of command tasks (default 3)')
    p.add_argument('--cmd', default='echo hi', help="command of each task (default 'echo hi')")
    p.add_argument('--cpus', type=float, default=0.1, help='cpus per task (default 0.1)')
    p.add_argument('--mem', type=float, default=32.0, help='mem (MB) per task (default 32)')
    p.add_argument('--kill-cmd', default='sleep 1000',
                   help="command of the task that gets killed (default 'sleep 1000')")
    p.add_argument('--refuse-seconds', type=float, default=30.0,
                   help='refuse_seconds when declining unused offers (default 30; '
                        'the script REVIVEs when it needs offers again)')
    p.add_argument('--reconcile-wait', type=float, default=15.0,
                   help='seconds to wait for each reconciliation answer (default 15)')
    args = p.parse_args()

    master = host_port(args.master)
    run = Run('pymesos_scheduler', args.timeout, master=master)
    run.set_phase('probing %s' % master)
    probe_tcp(run, master)

    # Import late: pymesos installs a SIGINT handler at import time.
    try:
        from addict import Dict
        from pymesos import MesosSchedulerDriver, Scheduler
    except ImportError as e:
        run.fail('cannot import pymesos (run .ci/python-env.sh and use its python): %s' % e)

    rid = uuid.uuid4().hex[:8]
    task_ids = ['interop-%d-%s' % (i, rid) for i in range(args.tasks)]
    sleeper_id = 'interop-sleeper-%s' % rid
    bogus_id = 'interop-no-such-task-%s' % rid

    # Shared state, guarded by run.lock. Callbacks run on pymesos' IO thread.
    st = {
        'registered': False,
        'framework_id': None,
        'pending': list(task_ids),      # echo tasks still to launch
        'want_sleeper': False,          # launch the sleeper from the next offer
        'sleeper_launched': False,
        'states': {},                   # task id -> [states]
        'updates_without_uuid': [],     # reconciliation answers (and any other master-made update)
        'offers': 0, 'declined': 0, 'accepted': 0, 'rescinded': 0,
        'disconnects': 0, 'reregistrations': 0, 'heartbeats': 0,
        'stopping': False,
    }
    run.summary.update({
        'tasks': st['states'], 'task_ids': task_ids, 'sleeper_task_id': sleeper_id,
    })

    def state_of(tid):
        s = st['states'].get(tid)
        return s[-1] if s else None

    class InteropScheduler(Scheduler):
        @run.guard('registered callback')
        def registered(self, driver, framework_id, master_info):
            run.log('SUBSCRIBED as framework %s' % framework_id.value)
            with run.cond:
                st['registered'] = True
                st['framework_id'] = framework_id.value
                run.summary['framework_id'] = framework_id.value
                run.summary['master_version'] = master_info.get('version')
                run.cond.notify_all()
            run.log('master info (as built by pymesos): %s' % dict(master_info))

        @run.guard('reregistered callback')
        def reregistered(self, driver, master_info):
            with run.cond:
                st['reregistrations'] += 1
            run.log('re-registered (the event stream was re-opened)')

        def disconnected(self, driver):
            with run.cond:
                if st['stopping']:
                    return
                st['disconnects'] += 1
            run.log('disconnected from the master (pymesos re-subscribes by itself)')

        def processHeartBeat(self, driver):
            with run.cond:
                st['heartbeats'] += 1

        @run.guard('resourceOffers callback')
        def resourceOffers(self, driver, offers):
            for offer in offers:
                res = offer.get('resources', [])
                cpus, mem = scalar(res, 'cpus'), scalar(res, 'mem')
                launch = []
                with run.cond:
                    st['offers'] += 1
                    while st['pending'] and fits(cpus, mem, args.cpus, args.mem):
                        launch.append((st['pending'].pop(0), args.cmd))
                        cpus -= args.cpus
                        mem -= args.mem
                    if st['want_sleeper'] and not st['sleeper_launched'] \
                            and fits(cpus, mem, args.cpus, args.mem):
                        st['sleeper_launched'] = True
                        launch.append((sleeper_id, args.kill_cmd))
                    more_needed = bool(st['pending'])
                    for tid, _ in launch:
                        st['states'].setdefault(tid, [])
                    if launch:
                        st['accepted'] += 1
                    else:
                        st['declined'] += 1
                run.log('offer %s from agent %s (%s): cpus=%g mem=%g -> %s' % (
                    offer.id.value, offer.agent_id.value, offer.get('hostname'),
                    scalar(res, 'cpus'), scalar(res, 'mem'),
                    ('launch %s' % [t for t, _ in launch]) if launch else 'decline'))
                if launch:
                    tasks = []
                    for tid, cmd in launch:
                        task = Dict()
                        task.task_id.value = tid
                        task.agent_id.value = offer.agent_id.value
                        task.name = 'pymesos interop %s' % tid
                        task.command.value = cmd
                        task.resources = scalar_resources(args.cpus, args.mem)
                        tasks.append(task)
                    # While more tasks wait for resources, do not filter the
                    # rest of this offer; otherwise refuse it like a decline.
                    refuse = 0.0 if more_needed else args.refuse_seconds
                    driver.launchTasks(offer.id, tasks, filters={'refuse_seconds': refuse})
                else:
                    driver.declineOffer(offer.id, filters={'refuse_seconds': args.refuse_seconds})

        def offerRescinded(self, driver, offer_id):
            with run.cond:
                st['rescinded'] += 1
            run.log('offer rescinded: %s' % offer_id.get('value'))

        @run.guard('statusUpdate callback')
        def statusUpdate(self, driver, status):
            tid = status.task_id.value
            state = status.state
            brief = {'task_id': tid, 'state': state}
            for k in ('reason', 'message', 'source'):
                if k in status:
                    brief[k] = status[k]
            run.log('update: %s %s%s%s' % (
                tid, state,
                (' reason=%s' % status['reason']) if 'reason' in status else '',
                (' message=%r' % status['message']) if 'message' in status else ''))
            with run.cond:
                if 'uuid' not in status:
                    st['updates_without_uuid'].append(brief)
                st['states'].setdefault(tid, []).append(state)
                run.cond.notify_all()
            # Fail fast on a task that ended badly.
            if tid in task_ids and state in TERMINAL_STATES and state != 'TASK_FINISHED':
                run.fail('task %s ended in %s (reason=%s, message=%r)' % (
                    tid, state, status.get('reason'), status.get('message')))
            if tid == sleeper_id and state in TERMINAL_STATES and state != 'TASK_KILLED':
                run.fail('task %s (%s) ended in %s (reason=%s, message=%r)' % (
                    tid, args.kill_cmd, state, status.get('reason'), status.get('message')))

        def frameworkMessage(self, driver, executor_id, agent_id, message):
            run.log('unexpected framework message from %s' % executor_id)

        def slaveLost(self, driver, agent_id):
            run.log('agent lost: %s' % agent_id.get('value'))

        def executorLost(self, driver, executor_id, agent_id, status):
            run.log('executor lost: %s on %s status=%s' % (executor_id, agent_id, status))

        def error(self, driver, message):
            run.fail('ERROR event from the master: %s' % message)

    framework = Dict()
    framework.user = 'root'
    framework.name = 'pymesos-interop'
    framework.failover_timeout = 60
    framework.hostname = socket.gethostname()

    # timeout: pymesos uses it as connect deadline AND as the socket timeout
    # of every call; keep it beyond our watchdog so the watchdog reports.
    driver = MesosSchedulerDriver(InteropScheduler(), framework, master,
                                  use_addict=True, timeout=args.timeout + 30)

    def call(what, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as e:
            run.fail('%s call failed: %s: %s' % (what, type(e).__name__, e))

    try:
        run.set_phase('subscribing')
        driver.start()
        run.wait_for(lambda: st['registered'], 'waiting for SUBSCRIBED')

        run.set_phase('running %d command tasks' % args.tasks)
        run.wait_for(lambda: all(state_of(t) == 'TASK_FINISHED' for t in task_ids),
                     'waiting for %d tasks to reach TASK_FINISHED' % args.tasks)
        run.log('all %d tasks finished' % args.tasks)

        run.set_phase('launching the task to kill')
        with run.cond:
            st['want_sleeper'] = True
        call('REVIVE', driver.reviveOffers)
        run.wait_for(lambda: state_of(sleeper_id) == 'TASK_RUNNING',
                     'waiting for %s to reach TASK_RUNNING' % sleeper_id)

        run.set_phase('implicit reconciliation')
        with run.cond:
            mark = len(st['updates_without_uuid'])
        call('RECONCILE (implicit)', driver.reconcileTasks, [])
        got = run.wait_until(lambda: any(u['task_id'] == sleeper_id
                                         for u in st['updates_without_uuid'][mark:]),
                             args.reconcile_wait)
        with run.cond:
            implicit = list(st['updates_without_uuid'][mark:])
        run.summary['reconcile_implicit'] = implicit
        if not got:
            run.fail('implicit reconciliation: no UPDATE (without uuid) for running task %s within %gs'
                     % (sleeper_id, args.reconcile_wait))

        run.set_phase('killing %s' % sleeper_id)
        call('KILL', driver.killTask, {'value': sleeper_id})
        run.wait_for(lambda: state_of(sleeper_id) == 'TASK_KILLED',
                     'waiting for %s to reach TASK_KILLED' % sleeper_id)

        run.set_phase('explicit reconciliation of unknown task %s' % bogus_id)
        call('RECONCILE (explicit)', driver.reconcileTasks, [{'task_id': {'value': bogus_id}}])
        got = run.wait_until(lambda: bool(st['states'].get(bogus_id)), args.reconcile_wait)
        with run.cond:
            explicit = [u for u in st['updates_without_uuid'] if u['task_id'] == bogus_id]
            bogus_states = list(st['states'].get(bogus_id) or [])
            st['states'].pop(bogus_id, None)
        run.summary['reconcile_explicit'] = explicit[0] if explicit else (
            {'task_id': bogus_id, 'states': bogus_states} if bogus_states else None)
        if not got:
            run.fail('explicit reconciliation: no UPDATE for unknown task %s within %gs'
                     % (bogus_id, args.reconcile_wait))

        run.set_phase('stopping (TEARDOWN)')
        with run.cond:
            st['stopping'] = True
        driver.stop()
        driver.join()
        time.sleep(0.1)  # let a re-raised IO-thread exception arrive in this try block
        # pymesos forgets the framework id only after a successful TEARDOWN.
        teardown_ok = driver.framework_id is None
        with run.cond:
            run.summary.update({
                'finished': sum(1 for t in task_ids if state_of(t) == 'TASK_FINISHED'),
                'killed': state_of(sleeper_id) == 'TASK_KILLED',
                'teardown_ok': teardown_ok,
                'offers_received': st['offers'], 'offers_declined': st['declined'],
                'offers_accepted': st['accepted'], 'offers_rescinded': st['rescinded'],
                'disconnects': st['disconnects'], 'reregistrations': st['reregistrations'],
                'heartbeats': st['heartbeats'],
            })
        if not teardown_ok:
            run.fail('TEARDOWN was not accepted by the master (see the pymesos log above)')
        run.finish(True)
    except KeyboardInterrupt:
        run.fail('interrupted', code=EXIT_FAIL)
    except BaseException as e:
        # pymesos re-raises exceptions of its IO thread (e.g. a non-2xx answer
        # to SUBSCRIBE or to a call) in the main thread.
        run.fail('pymesos driver aborted: %s: %s' % (type(e).__name__, e))


if __name__ == '__main__':
    main()
