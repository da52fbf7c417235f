//! Builders the reservation and persistent-volume tests share: dynamically reserved
//! resources, volumes, 0.1 cpu / 32 MB command tasks that use them, ACCEPT with LAUNCH,
//! and finding a volume in an offer.

use crate::framework::{framework_info, Fw};
use serde_json::json;
use strata_api::scheduler::{Accept, Command, Launch, Operation};
use strata_api::{CommandInfo, Filters, FrameworkInfo, Offer, TaskId, TaskInfo};
use strata_resources::{Reservation, Resource, Resources, WireFormat, WireResource};

/// A checkpointing framework of `role` (60 s failover timeout).
pub fn role_framework(name: &str, role: &str) -> FrameworkInfo {
    let mut info = framework_info(name, 60.0, true, true);
    info.role = Some(role.into());
    info
}

/// `amount` of scalar `name` dynamically reserved for `role` (no principal).
pub fn reserved(name: &str, amount: f64, role: &str) -> Resource {
    Resource::scalar(name, amount).reserved(Reservation::dynamic(role, None))
}

/// A persistent volume `id` of `mb` reserved disk of `role`, at `container_path` in
/// `mode` (`RW` or `RO`).
pub fn volume(role: &str, mb: f64, id: &str, container_path: &str, mode: &str) -> Resource {
    let mut v = reserved("disk", mb, role);
    v.disk = Some(Box::new(json!({"persistence": {"id": id},
        "volume": {"mode": mode, "container_path": container_path}})));
    v
}

/// `rs` in the wire form frameworks send (pre-refinement).
pub fn pre(rs: &[Resource]) -> Vec<WireResource> {
    Resources::from_vec(rs.to_vec()).to_wire(WireFormat::PreRefinement)
}

/// A 0.1 cpu / 32 MB shell task on `offer`'s agent that also uses `extra` (wire).
pub fn task_using(id: &str, offer: &Offer, cmd: &str, extra: Vec<WireResource>) -> TaskInfo {
    let mut res = pre(&[Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)]);
    res.extend(extra);
    TaskInfo::command(
        id,
        TaskId::new(id),
        offer.agent_id.clone(),
        res,
        CommandInfo::shell(cmd),
    )
}

/// A LAUNCH operation.
pub fn launch(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        kind: "LAUNCH".into(),
        launch: Some(Launch { task_infos: tasks }),
        ..Operation::default()
    }
}

/// ACCEPT of `offers`; what is left of them is refused for `refuse_seconds`.
pub async fn accept_offers(
    fw: &Fw,
    offers: &[Offer],
    operations: Vec<Operation>,
    refuse_seconds: f64,
) {
    let accept = Accept {
        offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
        operations,
        filters: Some(Filters {
            refuse_seconds: Some(refuse_seconds),
        }),
    };
    fw.call(Command::Accept(accept)).await;
}

/// The wire object of the persistent volume `id` as offered (tasks must echo it).
pub fn offered_volume(o: &Offer, id: &str) -> Option<WireResource> {
    o.resources
        .iter()
        .find(|w| w.disk.as_ref().and_then(|d| d.pointer("/persistence/id")) == Some(&json!(id)))
        .cloned()
}
