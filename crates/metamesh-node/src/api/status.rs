//! Failures as gRPC statuses, in one place so that every service answers alike.
//!
//! - A refused command or a bad argument ([`CommandError`]) keeps its category's code and an
//!   `ErrorDetails` naming the field (`metamesh_proto::convert::status`).
//! - Not being the leader is UNAVAILABLE with the leader's address in [`LEADER_HEADER`]: the
//!   client retries there (until the replica layer forwards writes itself).
//! - A read the replica cannot serve fresh enough (not caught up to `min_revision`, or staler
//!   than `max_staleness_ms`) is UNAVAILABLE saying why, with the leader's address when known.
//! - A refused membership change keeps its category (FAILED_PRECONDITION, NOT_FOUND) and an
//!   `ErrorDetails` naming the field, as a refused command does.
//! - The store's own failures are INTERNAL with a generic message; the detail goes to the log,
//!   not to the caller, because it may name files and SQL.

use metamesh_core::CommandError;
use metamesh_proto::v1;
use metamesh_raft::replica::MembershipError;
use metamesh_raft::{ReadError, WriteError};
use metamesh_store::StoreError;
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::api::caller::LEADER_HEADER;

/// A refused command or invalid argument.
pub fn refused(err: CommandError) -> Status {
    metamesh_proto::convert::status(&err)
}

/// A store failure: INVALID_ARGUMENT (etc.) for bad query arguments, INTERNAL otherwise.
pub fn store(err: StoreError) -> Status {
    match err {
        StoreError::Invalid(e) => refused(e),
        other => internal(&other),
    }
}

/// INTERNAL, logging the cause.
pub fn internal(cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %cause, "request failed inside the node");
    Status::internal("internal error")
}

/// A write that did not happen.
pub fn write(err: WriteError) -> Status {
    match err {
        WriteError::NotLeader { leader, leader_addr } => not_leader(leader, leader_addr),
        WriteError::Raft(e) => {
            tracing::warn!(error = %e, "write failed in raft");
            Status::unavailable("replication failed; retry")
        }
    }
}

/// A read that could not be served at the asked consistency.
pub fn read(err: ReadError) -> Status {
    match err {
        ReadError::NotLeader { leader, leader_addr } => not_leader(leader, leader_addr),
        e @ ReadError::NotCaughtUp { .. } => Status::unavailable(e.to_string()),
        ReadError::TooStale { leader, ref leader_addr, .. } => {
            let mut status = Status::unavailable(format!("{err}; retry later, at another replica or at the leader"));
            if let Some(value) = leader.and(leader_addr.as_deref()).and_then(|a| MetadataValue::try_from(a).ok()) {
                status.metadata_mut().insert(LEADER_HEADER, value);
            }
            status
        }
        ReadError::Raft(e) => {
            tracing::warn!(error = %e, "read barrier failed in raft");
            Status::unavailable("replication failed; retry")
        }
    }
}

/// A membership change that was not made. `field` is the request field naming the node.
pub fn membership(err: MembershipError, field: &str) -> Status {
    match err {
        MembershipError::NotLeader { leader, leader_addr } => not_leader(leader, leader_addr),
        e @ (MembershipError::IsVoter(_) | MembershipError::NotLearner(_)) => {
            with_field(Code::FailedPrecondition, field, e.to_string())
        }
        e @ MembershipError::NotMember(_) => with_field(Code::NotFound, field, e.to_string()),
        e @ MembershipError::InProgress => Status::unavailable(e.to_string()),
        MembershipError::Raft(e) => {
            tracing::warn!(error = %e, "membership change failed in raft");
            Status::unavailable("replication failed; retry")
        }
    }
}

/// A refusal with `code` and an `ErrorDetails` naming `field`, shaped like a refused command's
/// (`metamesh_proto::convert::status`) for refusals that are not command errors.
pub fn with_field(code: Code, field: &str, message: String) -> Status {
    let name = match code {
        Code::NotFound => "not_found",
        Code::FailedPrecondition => "failed_precondition",
        Code::AlreadyExists => "already_exists",
        _ => "invalid_argument",
    };
    let detail = v1::ErrorDetail { code: name.to_owned(), field: field.to_owned(), message: message.clone() };
    Status::with_details(code, message, v1::ErrorDetails { errors: vec![detail] }.encode_to_vec().into())
}

/// UNAVAILABLE naming the leader, with its address in [`LEADER_HEADER`] when known.
pub fn not_leader(leader: Option<u64>, leader_addr: Option<String>) -> Status {
    let (Some(id), Some(addr)) = (leader, leader_addr) else {
        return match leader {
            Some(id) => Status::unavailable(format!("not the leader; the leader is node {id} (address unknown)")),
            None => Status::unavailable("not the leader and no leader is known (election in progress); retry"),
        };
    };
    let mut status = Status::unavailable(format!("not the leader; retry at node {id} ({addr})"));
    // An address that is not valid metadata is still named in the message.
    if let Ok(value) = MetadataValue::try_from(addr.as_str()) {
        status.metadata_mut().insert(LEADER_HEADER, value);
    }
    status
}

/// INVALID_ARGUMENT naming `field`, with the usual `ErrorDetails`.
pub fn invalid(field: &str, reason: impl Into<String>) -> Status {
    refused(CommandError::invalid(field, reason))
}

/// UNIMPLEMENTED for a part of the API this node cannot serve yet, saying why.
pub fn unimplemented(what: &str, why: &str) -> Status {
    Status::unimplemented(format!("{what} is not implemented yet: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_names_the_leader_and_sets_its_address() {
        let s = write(WriteError::NotLeader { leader: Some(2), leader_addr: Some("10.0.0.2:7001".into()) });
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(s.message().contains("node 2"), "{}", s.message());
        assert_eq!(s.metadata().get(LEADER_HEADER).unwrap(), "10.0.0.2:7001");

        let s = read(ReadError::NotLeader { leader: None, leader_addr: None });
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(s.metadata().get(LEADER_HEADER).is_none());

        let s = read(ReadError::NotCaughtUp { wanted: 9, applied: 3, waited_ms: 2000 });
        assert_eq!(s.code(), tonic::Code::Unavailable);
        let s = read(ReadError::TooStale {
            replica: 2,
            bound_ms: 200,
            stale: metamesh_raft::replica::Stale::Old { ms: 340 },
            leader: Some(1),
            leader_addr: Some("10.0.0.1:7001".into()),
        });
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert!(s.message().contains("200 ms") && s.message().contains("340 ms ago"), "{}", s.message());
        assert_eq!(s.metadata().get(LEADER_HEADER).unwrap(), "10.0.0.1:7001");
        assert_eq!(write(WriteError::Raft("x".into())).code(), tonic::Code::Unavailable);
    }

    #[test]
    fn membership_refusals_name_the_field() {
        let detail = |s: &Status| v1::ErrorDetails::decode(s.details()).unwrap().errors.remove(0);
        let s = membership(MembershipError::IsVoter(3), "node_id");
        assert_eq!(s.code(), Code::FailedPrecondition);
        let d = detail(&s);
        assert_eq!((d.code.as_str(), d.field.as_str()), ("failed_precondition", "node_id"));
        assert!(d.message.contains("node 3"), "{}", d.message);
        let s = membership(MembershipError::NotMember(9), "node_id");
        assert_eq!((s.code(), detail(&s).code), (Code::NotFound, "not_found".to_owned()));
        let s = membership(MembershipError::NotLeader { leader: Some(1), leader_addr: Some("h:1".into()) }, "x");
        assert_eq!(s.metadata().get(LEADER_HEADER).unwrap(), "h:1");
    }

    #[test]
    fn store_failures_hide_their_detail() {
        let s = store(StoreError::Corrupt("table versions at /secret/path".into()));
        assert_eq!(s.code(), tonic::Code::Internal);
        assert!(!s.message().contains("secret"));
        let s = store(StoreError::Invalid(CommandError::invalid("page_token", "bad")));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
    }
}
