#!/usr/bin/env python3
"""mesoshttp 0.4.2 scheduler interop test (one command task).

  python tests/interop/mesoshttp_scheduler.py --master 127.0.0.1:5050 \
      [--cmd 'echo mesoshttp-ok'] [--cpus 0.1] [--mem 32] [--timeout 60]

Runs MesosClient.register() (blocking; it owns the SUBSCRIBE stream) in a
thread. On SUBSCRIBED it keeps the driver; on OFFERS it launches one command
task with offer.accept([task]) (TaskInfo with agent_id; mesoshttp adds
slave_id) and declines the other offers; UPDATE callbacks (mesoshttp acks
them itself when they carry a uuid) are recorded until TASK_FINISHED. Then it
tears down: client.tearDown() (stop flag) plus driver.tearDown() (TEARDOWN
call), and expects the master to close the event stream so register() returns.

Progress goes to stderr; one JSON line goes to stdout. Exit 0 on success,
1 on failure, 2 on bad usage, 3 on timeout.
"""

import logging
import os
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_common import (  # noqa: E402
    TERMINAL_STATES, Run, base_parser, fits, host_port, probe_tcp, scalar,
    scalar_resources)


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument('--cmd', default='echo mesoshttp-ok', help="task command (default 'echo mesoshttp-ok')")
    p.add_argument('--cpus', type=float, default=0.1, help='cpus of the task (default 0.1)')
    p.add_argument('--mem', type=float, default=32.0, help='mem (MB) of the task (default 32)')
    p.add_argument('--refuse-seconds', type=float, default=30.0,
                   help='refuse_seconds when declining unused offers (default 30)')
    p.add_argument('--teardown-wait', type=float, default=20.0,
                   help='seconds to wait for the master to close the stream after TEARDOWN (default 20)')
    args = p.parse_args()

    master = host_port(args.master)
    url = 'http://' + master
    run = Run('mesoshttp_scheduler', args.timeout, master=master)
    run.set_phase('probing %s' % master)
    probe_tcp(run, master)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s [%(levelname)s] [%(threadName)s] [%(name)s] %(message)s')
    logging.getLogger('urllib3').setLevel(logging.WARNING)
    try:
        from mesoshttp.client import MesosClient
    except ImportError as e:
        run.fail('cannot import mesoshttp (run .ci/python-env.sh and use its python): %s' % e)

    tid = 'mesoshttp-interop-%s' % uuid.uuid4().hex[:8]
    st = {'driver': None, 'framework_id': None, 'launched': False, 'states': [],
          'updates': [], 'offers': 0, 'declined': 0, 'heartbeats': 0,
          'errors': [], 'register_result': None, 'register_done': False,
          'disconnected': 0}
    run.summary.update({'task_id': tid, 'states': st['states']})

    # max_reconnect=1: register() returns (instead of sleeping 10 s and
    # re-subscribing) when SUBSCRIBE fails or the stream ends early.
    client = MesosClient(mesos_urls=[url], frameworkName='mesoshttp-interop', frameworkId=None,
                         max_reconnect=1)
    client.set_failover_timeout(60)

    @run.guard('SUBSCRIBED callback')
    def on_subscribed(driver):
        with run.cond:
            st['driver'] = driver
            st['framework_id'] = driver.frameworkId
            run.summary['framework_id'] = driver.frameworkId
            run.summary['stream_id'] = driver.streamId
            run.cond.notify_all()
        run.log('subscribed: framework_id=%s stream_id=%s master_info=%s' % (
            driver.frameworkId, driver.streamId, client.get_master_info()))

    @run.guard('OFFERS callback')
    def on_offers(offers):
        for offer in offers:
            o = offer.get_offer()
            res = o.get('resources', [])
            cpus, mem = scalar(res, 'cpus'), scalar(res, 'mem')
            with run.cond:
                st['offers'] += 1
                take = not st['launched'] and fits(cpus, mem, args.cpus, args.mem)
                if take:
                    st['launched'] = True
                else:
                    st['declined'] += 1
            run.log('offer %s from agent %s: cpus=%g mem=%g -> %s' % (
                o['id']['value'], o['agent_id']['value'], cpus, mem, 'launch' if take else 'decline'))
            if take:
                task = {
                    'name': 'mesoshttp interop task',
                    'task_id': {'value': tid},
                    'agent_id': {'value': o['agent_id']['value']},
                    'resources': scalar_resources(args.cpus, args.mem),
                    'command': {'value': args.cmd},
                }
                offer.accept([task], options={'filters': {'refuse_seconds': args.refuse_seconds}})
            else:
                offer.decline(options={'filters': {'refuse_seconds': args.refuse_seconds}})

    @run.guard('UPDATE callback')
    def on_update(update):
        # mesoshttp passes the raw `update` object ({"status": {...}}).
        status = update['status']
        state = status['state']
        t = status['task_id']['value']
        run.log('update: %s %s%s%s' % (
            t, state, (' reason=%s' % status['reason']) if 'reason' in status else '',
            (' message=%r' % status['message']) if 'message' in status else ''))
        with run.cond:
            st['updates'].append({k: status[k] for k in ('state', 'reason', 'source', 'message')
                                  if k in status})
            if t == tid:
                st['states'].append(state)
            run.cond.notify_all()
        if t == tid and state in TERMINAL_STATES and state != 'TASK_FINISHED':
            run.fail('task %s ended in %s (reason=%s, message=%r)' % (
                tid, state, status.get('reason'), status.get('message')))

    def on_error(message):
        run.fail('ERROR event from the master: %s' % message)

    def on_heartbeat(_):
        with run.cond:
            st['heartbeats'] += 1

    def on_disconnected(message):
        with run.cond:
            st['disconnected'] += 1
        run.log('mesoshttp: %s' % message)

    client.on(MesosClient.SUBSCRIBED, on_subscribed)
    client.on(MesosClient.OFFERS, on_offers)
    client.on(MesosClient.UPDATE, on_update)
    client.on(MesosClient.ERROR, on_error)
    client.on(MesosClient.HEARTBEAT, on_heartbeat)
    client.on(MesosClient.DISCONNECTED, on_disconnected)

    def register():
        res = None
        try:
            res = client.register()
        except BaseException as e:
            res = '%s: %s' % (type(e).__name__, e)
        with run.cond:
            st['register_result'] = res
            st['register_done'] = True
            run.cond.notify_all()

    th = threading.Thread(target=register, name='mesoshttp-register', daemon=True)
    run.set_phase('subscribing')
    th.start()

    def ended_early():
        if st['register_done']:
            run.fail('MesosClient.register() returned %r before the test was done: %s' % (
                st['register_result'],
                'SUBSCRIBE failed (see the mesoshttp log above)' if st['driver'] is None
                else 'the event stream ended'))
        return False

    run.wait_for(lambda: st['driver'] is not None or ended_early(),
                 'waiting for SUBSCRIBED (mesoshttp handles an event only once the next record arrives)')
    run.wait_for(lambda: (st['states'] and st['states'][-1] == 'TASK_FINISHED') or ended_early(),
                 'waiting for task %s to reach TASK_FINISHED' % tid)

    run.set_phase('tearing down')
    client.tearDown()           # stop flag: the stream loop exits at the next record
    st['driver'].tearDown()     # the TEARDOWN call itself
    closed = run.wait_until(lambda: st['register_done'], args.teardown_wait)
    with run.cond:
        run.summary.update({
            'finished': 1 if st['states'][-1] == 'TASK_FINISHED' else 0,
            'updates': st['updates'], 'offers_received': st['offers'],
            'offers_declined': st['declined'], 'heartbeats': st['heartbeats'],
            'disconnects': st['disconnected'],
            'stream_closed_after_teardown': closed,
        })
    if not closed:
        run.fail('the master did not close the event stream within %gs after TEARDOWN'
                 % args.teardown_wait)
    run.finish(True)


if __name__ == '__main__':
    main()
