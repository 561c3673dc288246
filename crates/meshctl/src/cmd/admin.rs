//! Operations on the node's shard group (AdminService) and `health`. Membership changes are
//! answered by the leader; a follower refuses them naming it.

use clap::Subcommand;
use metamesh_proto::v1;
use serde_json::json;

use crate::conn::Ctx;
use crate::json;
use crate::output::{self, Output};

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Raft and apply status of the node, with the group's membership.
    Status,
    /// Build a state-machine snapshot and compact the log.
    Snapshot {
        /// Return at once instead of waiting for the snapshot.
        #[arg(long)]
        no_wait: bool,
    },
    /// Add a node as a non-voting learner (promote it with `admin voters`).
    AddLearner {
        /// Raft node id of the new node.
        id: u64,
        /// Its Raft listener address, host:port. (Not named `addr`: clap would take it for the
        /// global `--addr` and dial the learner instead of the node.)
        raft_addr: String,
        /// Return at once instead of waiting until it has caught up with the log.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Remove a learner from the group (demote a voter first with `admin voters`).
    RemoveLearner {
        /// Raft node id of the learner.
        id: u64,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// Set the voters (comma separated ids); each must be a voter or a caught-up learner.
    /// Voters left out leave the group unless --retain-as-learners.
    Voters {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<u64>,
        /// Keep the voters left out as learners (they go on receiving the log).
        #[arg(long)]
        retain_as_learners: bool,
        #[arg(long, default_value = "")]
        request_id: String,
    },
    /// The shard map as the node knows it: its own group, members and tenants.
    ShardMap,
}

pub async fn run(ctx: &Ctx, cmd: AdminCmd) -> anyhow::Result<()> {
    let mut admin = ctx.admin().await?;
    match cmd {
        AdminCmd::Status => {
            let s = admin.status(v1::StatusRequest {}).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json::status(&s)),
                Output::Table => {
                    output::print_table(&output::record(vec![
                        ("node", s.node_id.to_string()),
                        ("shard_group", s.shard_group.clone()),
                        ("role", json::role_name(s.role)),
                        ("leader", output::opt(s.leader_id)),
                        ("term", s.term.to_string()),
                        ("last_log_index", s.last_log_index.to_string()),
                        ("committed_index", s.committed_index.to_string()),
                        ("applied_revision", s.applied_revision.to_string()),
                        ("snapshot_index", output::opt(s.snapshot_index)),
                        ("tenants", output::list(&s.tenants)),
                        ("version", s.build_version.clone()),
                        ("uptime", format!("{:.1}s", s.uptime_ms as f64 / 1000.0)),
                    ]));
                    println!();
                    print_membership(s.membership.as_ref());
                }
            }
        }
        AdminCmd::Snapshot { no_wait } => {
            let r = admin.trigger_snapshot(v1::TriggerSnapshotRequest { wait: !no_wait }).await?.into_inner();
            match (ctx.output, r.snapshot_index) {
                (Output::Json, index) => output::print_json(&json!({"snapshot_index": index})),
                (Output::Table, Some(i)) => println!("snapshot built up to log index {i}"),
                (Output::Table, None) => println!("snapshot requested"),
            }
        }
        AdminCmd::AddLearner { id, raft_addr, no_wait, request_id } => {
            let request = v1::AddLearnerRequest {
                request_id,
                node: Some(v1::Member { node_id: id, raft_addr, api_addr: String::new() }),
                wait_caught_up: !no_wait,
            };
            let r = admin.add_learner(request).await?.into_inner();
            membership_reply(ctx, r.membership.as_ref());
        }
        AdminCmd::RemoveLearner { id, request_id } => {
            let r = admin.remove_learner(v1::RemoveLearnerRequest { request_id, node_id: id }).await?.into_inner();
            membership_reply(ctx, r.membership.as_ref());
        }
        AdminCmd::Voters { ids, retain_as_learners, request_id } => {
            let request = v1::ChangeMembershipRequest { request_id, voters: ids, retain_as_learners };
            let r = admin.change_membership(request).await?.into_inner();
            membership_reply(ctx, r.membership.as_ref());
        }
        AdminCmd::ShardMap => {
            let map = admin.get_shard_map(v1::GetShardMapRequest {}).await?.into_inner();
            match ctx.output {
                Output::Json => output::print_json(&json::shard_map(&map)),
                Output::Table => output::print_table(&output::table(
                    &["GROUP", "TENANTS", "NODE", "RAFT_ADDR", "API_ADDR"],
                    map.groups.iter().flat_map(|g| {
                        g.members.iter().map(|m| {
                            vec![
                                g.id.clone(),
                                output::list(&g.tenants),
                                m.node_id.to_string(),
                                m.raft_addr.clone(),
                                m.api_addr.clone(),
                            ]
                        })
                    }),
                )),
            }
        }
    }
    Ok(())
}

/// Prints the node's health; fails (exit 1) when it is not serving, so `meshctl health` works
/// as a probe.
pub async fn health(ctx: &Ctx) -> anyhow::Result<()> {
    let h = ctx.admin().await?.health(v1::HealthRequest {}).await?.into_inner();
    match ctx.output {
        Output::Json => output::print_json(&json::health(&h)),
        Output::Table => {
            println!("serving: {}", if h.serving { "yes" } else { "no" });
            output::print_table(&output::table(
                &["COMPONENT", "OK", "DETAIL"],
                h.components
                    .iter()
                    .map(|c| vec![c.name.clone(), if c.ok { "ok".into() } else { "FAIL".into() }, c.detail.clone()]),
            ));
        }
    }
    if !h.serving {
        anyhow::bail!("the node is not serving");
    }
    Ok(())
}

fn membership_reply(ctx: &Ctx, m: Option<&v1::Membership>) {
    match ctx.output {
        Output::Json => output::print_json(&json!({"membership": json::membership(m)})),
        Output::Table => print_membership(m),
    }
}

fn print_membership(m: Option<&v1::Membership>) {
    let Some(m) = m else { return };
    let rows = m
        .voters
        .iter()
        .map(|x| (x, "voter"))
        .chain(m.learners.iter().map(|x| (x, "learner")))
        .map(|(x, role)| vec![x.node_id.to_string(), role.to_owned(), x.raft_addr.clone(), x.api_addr.clone()]);
    output::print_table(&output::table(&["NODE", "MEMBERSHIP", "RAFT_ADDR", "API_ADDR"], rows));
    if m.joint {
        println!("joint configuration in effect (log index {})", m.log_index);
    }
}
