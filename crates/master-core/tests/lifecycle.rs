//! Less common paths, mostly checked for bookkeeping (the harness's invariants run after
//! every step): executor exits, UPDATE_FRAMEWORK, operator teardown and MARK_AGENT_GONE.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::{ExecutorExited, FrameworkMessage, ToAgent, ToMaster};
use strata_api::scheduler::{Command, Event, Failure, Message, UpdateFramework};
use strata_api::{ExecutorId, Reason, TaskState};
use strata_master_core::{Input, OperatorInput, Reply};
use strata_registry::Op;

#[test]
fn custom_executor_exit_frees_its_resources_and_tells_the_framework() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("fw"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let o = h.offers(&fid).pop().unwrap();
    let mut t = task("t1", &aid, "cpus:1;mem:128");
    t.command = None;
    t.executor = Some(custom_executor("ex", "cpus:0.5;mem:64"));
    h.launch(&fid, &o, vec![t]);
    h.status(&aid, &fid, "t1", TaskState::Finished, Some(1));
    assert_eq!(
        h.slave_state(&aid)["used_resources"]["cpus"],
        0.5,
        "the executor still holds its share"
    );

    // Framework ⇄ executor messages pass through.
    h.call(
        &fid,
        Command::Message(Message {
            agent_id: aid.clone(),
            executor_id: ExecutorId::new("ex"),
            data: "aGk=".into(),
        }),
    );
    assert!(matches!(&h.agent_msgs(&aid)[..], [ToAgent::FrameworkMessage(m)] if m.data == "aGk="));
    h.agent_send(
        &aid,
        ToMaster::ExecutorMessage(FrameworkMessage {
            framework_id: fid.clone(),
            executor_id: ExecutorId::new("ex"),
            data: "eW8=".into(),
        }),
    );
    assert!(
        matches!(&h.events(&fid)[..], [Event::Message(m)] if m.data == "eW8=" && m.agent_id == aid)
    );

    let exited = ExecutorExited {
        framework_id: fid.clone(),
        executor_id: ExecutorId::new("ex"),
        status: 256,
        command_executor: false,
    };
    h.agent_send(&aid, ToMaster::ExecutorExited(exited));
    assert_eq!(
        h.events(&fid),
        [Event::Failure(Failure {
            agent_id: Some(aid.clone()),
            executor_id: Some(ExecutorId::new("ex")),
            status: Some(256)
        })]
    );
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 0.0);
    assert!(h.fw_state(&fid)["executors"].as_array().unwrap().is_empty());

    // Command executors exit without a FAILURE event.
    let exited = ExecutorExited {
        framework_id: fid.clone(),
        executor_id: ExecutorId::new("t9"),
        status: 0,
        command_executor: true,
    };
    h.agent_send(&aid, ToMaster::ExecutorExited(exited));
    assert!(h.events(&fid).is_empty());
}

#[test]
fn update_framework_dropping_a_role_rescinds_its_offers() {
    let mut h = Harness::new();
    let mut info = multi_role("fw", &["a", "b"]);
    let fid = h.subscribe(info.clone());
    let aid = h.add_agent("a1", "cpus:4;mem:4096;cpus(b):2;mem(b):512");
    h.allocate();
    let offers = h.offers(&fid);
    let role = |o: &strata_api::Offer| {
        o.allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .unwrap()
    };
    assert_eq!(offers.iter().map(role).collect::<Vec<_>>(), ["a", "b"]);
    h.accept(
        &fid,
        vec![offers[0].id.clone()],
        vec![launch_op(vec![task("t1", &aid, "cpus:1;mem:128")])],
        refuse(0.0),
    );
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK"]);
    h.allocate();
    assert_eq!(h.offers(&fid).iter().map(role).collect::<Vec<_>>(), ["a"]);
    info.id = Some(fid.clone());
    info.roles = vec!["a".into()];
    let r = h.call(
        &fid,
        Command::UpdateFramework(UpdateFramework {
            framework_info: info.clone(),
            suppressed_roles: vec![],
            offer_constraints: None,
        }),
    );
    assert_eq!(r, Reply::Ok);
    let rescinded: Vec<_> = h
        .events(&fid)
        .into_iter()
        .filter(|e| matches!(e, Event::Rescind(_)))
        .collect();
    assert_eq!(
        rescinded,
        [Event::Rescind(strata_api::scheduler::Rescind {
            offer_id: offers[1].id.clone()
        })],
        "{:#?}",
        h.out
    );
    assert!(matches!(&h.persisted()[..], [Op::PutFramework { info: i, .. }] if i.roles == ["a"]));
    // The agent running its task hears the new FrameworkInfo.
    assert!(h
        .agent_msgs(&aid)
        .iter()
        .any(|m| matches!(m, ToAgent::UpdateFramework(u) if u.framework_info.roles == ["a"])));

    // Changing the user is refused, all or nothing.
    info.user = "bob".into();
    let r = h.call(
        &fid,
        Command::UpdateFramework(UpdateFramework {
            framework_info: info,
            suppressed_roles: vec![],
            offer_constraints: None,
        }),
    );
    assert_eq!(
        r,
        Reply::Error(strata_master_core::CallError {
            status: 400,
            message: "Updating 'FrameworkInfo.user' is unsupported; attempted to update from 'alice' to 'bob'".into()
        })
    );
    assert!(h.out.is_empty());
}

#[test]
fn operator_teardown_and_mark_gone() {
    let mut h = Harness::new();
    let a = h.subscribe(with_caps(fw_info("pa"), &["PARTITION_AWARE"]));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&a, &aid, "t1", "cpus:1;mem:128");
    let agent_conn = h.agent_conn(&aid);

    assert_eq!(
        h.step(Input::Operator(OperatorInput::MarkAgentGone {
            agent_id: aid.clone()
        })),
        Reply::Ok
    );
    assert_eq!(
        h.persisted(),
        [Op::MarkGone {
            id: aid.to_string()
        }]
    );
    let u = h.update(&a);
    assert_eq!(
        (u.state, u.reason),
        (
            TaskState::GoneByOperator,
            Some(Reason::AgentRemovedByOperator)
        )
    );
    assert!(matches!(&h.msgs_on(agent_conn)[..], [ToAgent::Shutdown(_)]));
    assert_eq!(h.closed_agent_conns(), [agent_conn]);
    assert_eq!(
        h.step(Input::Operator(OperatorInput::MarkAgentGone {
            agent_id: aid.clone()
        })),
        Reply::Ok,
        "idempotent"
    );

    // A gone agent cannot come back.
    let mut hello = h.agents[&aid].hello.clone();
    hello.agent_info.id = Some(aid.clone());
    let (_, got) = h.connect_agent(hello);
    assert!(got.is_none());

    let conn = h.fw_conn(&a);
    assert_eq!(
        h.step(Input::Operator(OperatorInput::Teardown {
            framework_id: a.clone()
        })),
        Reply::Ok
    );
    assert_eq!(h.closed_fw_conns(), [conn]);
    assert_eq!(h.persisted(), [Op::RemoveFramework { id: a.to_string() }]);
    let r = h.step(Input::Operator(OperatorInput::Teardown {
        framework_id: a.clone(),
    }));
    assert!(matches!(
        r,
        Reply::Error(strata_master_core::CallError { status: 400, .. })
    ));
}
