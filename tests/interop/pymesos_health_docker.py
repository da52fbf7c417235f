#!/usr/bin/env python3
"""pymesos 0.3.15 scheduler: COMMAND health checks and a DOCKER command task.

  python tests/interop/pymesos_health_docker.py --master 127.0.0.1:5050 \
      [--docker-image strata-test/busybox:latest] [--timeout 60]

From the offers it receives (unused offers are declined with --refuse-seconds)
it launches three tasks:
  - `unhealthy`: `sleep 600` with the COMMAND health check `exit 1`
    (delay 0, interval 0.5 s, grace 0, consecutive_failures 2, timeout 5 s).
    Required: TASK_RUNNING with healthy=false, then TASK_KILLED with
    healthy=false (Mesos: the executor kills a task whose health check failed
    too often and marks the terminal update unhealthy).
  - `healthy`: `sleep 600` with the COMMAND health check `exit 0` (same
    timings). Required: TASK_RUNNING with healthy=true and never
    healthy=false; then the script kills it (KILL) and requires TASK_KILLED.
  - `docker`: `echo hello-from-docker` (shell) in
    `container: {type: DOCKER, docker: {image: IMAGE, network: HOST}}`,
    cpus 0.1 mem 64. Required: TASK_FINISHED. When IMAGE is not present
    locally (`docker image inspect` fails) this task is not launched and the
    report says "docker": "skipped"; that counts as success only when the
    environment variable CI is not "true".
Then driver.stop() (TEARDOWN).

Progress goes to stderr; one JSON line goes to stdout. Exit 0 on success,
1 on failure, 2 on bad usage, 3 on timeout.
"""

import os
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_common import (  # noqa: E402
    EXIT_FAIL, TERMINAL_STATES, Run, base_parser, fits, host_port, probe_tcp,
    scalar, scalar_resources)

DEFAULT_IMAGE = 'strata-test/busybox:latest'


def health_check(cmd):
    return {
        'type': 'COMMAND',
        'command': {'value': cmd, 'shell': True},
        'delay_seconds': 0,
        'interval_seconds': 0.5,
        'grace_period_seconds': 0,
        'consecutive_failures': 2,
        'timeout_seconds': 5,
    }


def docker_image_present(image):
    """(present, why-not) using the docker CLI, as a framework author would check."""
    try:
        out = subprocess.run(['docker', 'image', 'inspect', image], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, timeout=20)
    except FileNotFoundError:
        return False, 'no docker command'
    except subprocess.TimeoutExpired:
        return False, 'docker image inspect did not answer within 20 s'
    if out.returncode != 0:
        err = out.stderr.decode('utf-8', 'replace').strip().splitlines()
        return False, 'docker image inspect %s failed: %s' % (image, err[-1] if err else out.returncode)
    return True, None


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument('--docker-image', default=DEFAULT_IMAGE,
                   help='image of the DOCKER task (default %(default)s; must be present locally)')
    p.add_argument('--refuse-seconds', type=float, default=30.0,
                   help='refuse_seconds when declining unused offers (default 30)')
    args = p.parse_args()

    master = host_port(args.master)
    run = Run('pymesos_health_docker', args.timeout, master=master)
    under_ci = os.environ.get('CI') == 'true'

    run.set_phase('checking docker image %s' % args.docker_image)
    docker_ok, why = docker_image_present(args.docker_image)
    run.summary['docker_image'] = args.docker_image
    if not docker_ok:
        if under_ci:
            run.fail('CI=true but the DOCKER task cannot run: %s (run .ci/docker-setup.sh)' % why)
        run.log('SKIPPING the DOCKER task: %s' % why)
        run.summary['docker'] = 'skipped'
        run.summary['docker_skip_reason'] = why

    run.set_phase('probing %s' % master)
    probe_tcp(run, master)

    # Import late: pymesos installs a SIGINT handler at import time.
    try:
        from addict import Dict
        from pymesos import MesosSchedulerDriver, Scheduler
    except ImportError as e:
        run.fail('cannot import pymesos (run .ci/python-env.sh and use its python): %s' % e)

    rid = uuid.uuid4().hex[:8]
    ids = {
        'unhealthy': 'interop-unhealthy-%s' % rid,
        'healthy': 'interop-healthy-%s' % rid,
        'docker': 'interop-docker-%s' % rid,
    }
    role_of = {tid: role for role, tid in ids.items()}
    specs = {  # role -> (cpus, mem)
        'unhealthy': (0.1, 32.0),
        'healthy': (0.1, 32.0),
        'docker': (0.1, 64.0),
    }
    pending = ['unhealthy', 'healthy'] + (['docker'] if docker_ok else [])

    st = {
        'registered': False,
        'pending': list(pending),
        'states': {},          # task id -> [states]
        'healthy': {},         # task id -> [[state, healthy]] for updates that carry `healthy`
        'last': {},            # task id -> brief of the last update
        'kill_sent': False,
        'offers': 0, 'declined': 0, 'accepted': 0,
        'disconnects': 0, 'stopping': False,
    }
    run.summary.update({'task_ids': ids, 'tasks': st['states'], 'healthy': st['healthy']})

    def state_of(tid):
        s = st['states'].get(tid)
        return s[-1] if s else None

    def make_task(role, agent_id):
        cpus, mem = specs[role]
        task = Dict()
        task.task_id.value = ids[role]
        task.agent_id.value = agent_id
        task.name = 'pymesos interop %s' % ids[role]
        task.resources = scalar_resources(cpus, mem)
        if role == 'docker':
            task.command.value = 'echo hello-from-docker'
            task.command.shell = True
            task.container.type = 'DOCKER'
            task.container.docker.image = args.docker_image
            task.container.docker.network = 'HOST'
        else:
            task.command.value = 'sleep 600'
            task.health_check = health_check('exit 1' if role == 'unhealthy' else 'exit 0')
        return task

    class HealthDockerScheduler(Scheduler):
        @run.guard('registered callback')
        def registered(self, driver, framework_id, master_info):
            run.log('SUBSCRIBED as framework %s' % framework_id.value)
            with run.cond:
                st['registered'] = True
                run.summary['framework_id'] = framework_id.value
                run.cond.notify_all()

        def disconnected(self, driver):
            with run.cond:
                if st['stopping']:
                    return
                st['disconnects'] += 1
            run.log('disconnected from the master (pymesos re-subscribes by itself)')

        @run.guard('resourceOffers callback')
        def resourceOffers(self, driver, offers):
            for offer in offers:
                res = offer.get('resources', [])
                cpus, mem = scalar(res, 'cpus'), scalar(res, 'mem')
                launch = []
                with run.cond:
                    st['offers'] += 1
                    for role in list(st['pending']):
                        c, m = specs[role]
                        if fits(cpus, mem, c, m):
                            st['pending'].remove(role)
                            launch.append(role)
                            st['states'].setdefault(ids[role], [])
                            cpus -= c
                            mem -= m
                    more_needed = bool(st['pending'])
                    st['accepted' if launch else 'declined'] += 1
                run.log('offer %s from agent %s: cpus=%g mem=%g -> %s' % (
                    offer.id.value, offer.agent_id.value, scalar(res, 'cpus'), scalar(res, 'mem'),
                    ('launch %s' % [ids[r] for r in launch]) if launch else 'decline'))
                if not launch:
                    driver.declineOffer(offer.id, filters={'refuse_seconds': args.refuse_seconds})
                    continue
                tasks = [make_task(role, offer.agent_id.value) for role in launch]
                refuse = 0.0 if more_needed else args.refuse_seconds
                driver.launchTasks(offer.id, tasks, filters={'refuse_seconds': refuse})

        @run.guard('statusUpdate callback')
        def statusUpdate(self, driver, status):
            tid = status.task_id.value
            state = status.state
            healthy = status['healthy'] if 'healthy' in status else None
            run.log('update: %s %s%s%s%s' % (
                tid, state,
                (' healthy=%s' % healthy) if healthy is not None else '',
                (' reason=%s' % status['reason']) if 'reason' in status else '',
                (' message=%r' % status['message']) if 'message' in status else ''))
            brief = {'state': state, 'healthy': healthy,
                     'reason': status.get('reason'), 'message': status.get('message')}
            with run.cond:
                st['states'].setdefault(tid, []).append(state)
                if healthy is not None:
                    st['healthy'].setdefault(tid, []).append([state, healthy])
                st['last'][tid] = brief
                kill_sent = st['kill_sent']
                run.cond.notify_all()
            role = role_of.get(tid)
            terminal = state in TERMINAL_STATES
            if role == 'unhealthy' and terminal:
                seen = st['healthy'].get(tid, [])
                if state != 'TASK_KILLED' or healthy is not False:
                    run.fail('health-check-failed task %s ended in %s with healthy=%s '
                             '(want TASK_KILLED, healthy=false; reason=%s, message=%r)' % (
                                 tid, state, healthy, status.get('reason'), status.get('message')))
                if ['TASK_RUNNING', False] not in seen:
                    run.fail('task %s was killed without a TASK_RUNNING healthy=false update '
                             'first (health updates seen: %s)' % (tid, seen))
            elif role == 'healthy':
                if healthy is False:
                    run.fail('task %s (health check `exit 0`) reported healthy=false in %s '
                             '(reason=%s, message=%r)' % (
                                 tid, state, status.get('reason'), status.get('message')))
                if terminal and (state != 'TASK_KILLED' or not kill_sent):
                    run.fail('healthy task %s ended in %s%s (reason=%s, message=%r)' % (
                        tid, state, '' if kill_sent else ' before it was killed',
                        status.get('reason'), status.get('message')))
            elif role == 'docker' and terminal and state != 'TASK_FINISHED':
                run.fail('DOCKER task %s ended in %s (reason=%s, message=%r)' % (
                    tid, state, status.get('reason'), status.get('message')))

        def offerRescinded(self, driver, offer_id):
            run.log('offer rescinded: %s' % offer_id.get('value'))

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
    framework.name = 'pymesos-interop-health-docker'
    framework.failover_timeout = 60
    framework.hostname = socket.gethostname()
    # timeout: pymesos uses it as connect deadline AND as the socket timeout
    # of every call; keep it beyond our watchdog so the watchdog reports.
    driver = MesosSchedulerDriver(HealthDockerScheduler(), framework, master,
                                  use_addict=True, timeout=args.timeout + 30)

    def call(what, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as e:
            run.fail('%s call failed: %s: %s' % (what, type(e).__name__, e))

    def healthy_seen(tid):
        return ['TASK_RUNNING', True] in st['healthy'].get(tid, [])

    try:
        run.set_phase('subscribing')
        driver.start()
        run.wait_for(lambda: st['registered'], 'waiting for SUBSCRIBED')

        run.set_phase('running %d tasks' % len(pending))
        run.wait_for(lambda: state_of(ids['unhealthy']) in TERMINAL_STATES,
                     'waiting for %s to be killed by its failing health check' % ids['unhealthy'])
        run.log('%s ended: %s' % (ids['unhealthy'], st['last'].get(ids['unhealthy'])))

        run.wait_for(lambda: healthy_seen(ids['healthy']),
                     'waiting for %s to report healthy=true' % ids['healthy'])
        run.set_phase('killing %s' % ids['healthy'])
        with run.cond:
            st['kill_sent'] = True
        call('KILL', driver.killTask, {'value': ids['healthy']})
        run.wait_for(lambda: state_of(ids['healthy']) == 'TASK_KILLED',
                     'waiting for %s to reach TASK_KILLED' % ids['healthy'])

        if docker_ok:
            run.wait_for(lambda: state_of(ids['docker']) == 'TASK_FINISHED',
                         'waiting for DOCKER task %s to reach TASK_FINISHED' % ids['docker'])
            run.summary['docker'] = 'finished'

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
                'unhealthy_end': st['last'].get(ids['unhealthy']),
                'healthy_reported_true': healthy_seen(ids['healthy']),
                'healthy_killed': state_of(ids['healthy']) == 'TASK_KILLED',
                'docker_end': st['last'].get(ids['docker']),
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
        # pymesos re-raises exceptions of its IO thread (e.g. a non-2xx answer
        # to SUBSCRIBE or to a call) in the main thread.
        run.fail('pymesos driver aborted: %s: %s' % (type(e).__name__, e))


if __name__ == '__main__':
    main()
