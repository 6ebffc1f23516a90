//! One mapping from failures to gRPC statuses, with `google.rpc` details a client can act
//! on: field violations for bad input, an UPPER_SNAKE reason for everything else.

use finops_domain::DomainError;
use finops_eventlog::EventLogError;
use finops_governance::GovernanceError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The error domain named in `ErrorInfo`.
const DOMAIN: &str = "finops.center";

fn with_reason(code: Code, message: String, reason: &str) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, DOMAIN, []))
}

/// `INVALID_ARGUMENT` listing every field at fault.
pub fn invalid_argument(violations: Vec<finops_domain::FieldViolation>) -> Status {
    let message = violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
    let details = ErrorDetails::with_bad_request(
        violations.into_iter().map(|v| FieldViolation::new(v.field, v.description)).collect::<Vec<_>>(),
    );
    Status::with_error_details(Code::InvalidArgument, format!("invalid request: {message}"), details)
}

/// `NOT_FOUND` for a resource name.
pub fn not_found(what: String) -> Status {
    with_reason(Code::NotFound, format!("{what} does not exist"), "NOT_FOUND")
}

/// Maps a log failure.
pub fn from_log(e: EventLogError) -> Status {
    match e {
        EventLogError::InvalidInput { field, value, reason } => {
            invalid_argument(vec![finops_domain::FieldViolation::new(field, format!("`{value}`: {reason}"))])
        }
        EventLogError::WrongExpectedVersion { .. } => {
            with_reason(Code::Aborted, e.to_string(), "CONCURRENT_MODIFICATION")
        }
        EventLogError::EventIdReused { .. } => with_reason(Code::AlreadyExists, e.to_string(), "REQUEST_ID_REUSED"),
        EventLogError::Database(_) => with_reason(Code::Unavailable, e.to_string(), "STORE_UNAVAILABLE"),
        _ => with_reason(Code::Internal, e.to_string(), "INTERNAL"),
    }
}

/// Maps a command failure.
pub fn from_governance(e: GovernanceError) -> Status {
    match e {
        GovernanceError::Refused(DomainError::Invalid(violations)) => invalid_argument(violations),
        GovernanceError::Refused(e @ DomainError::IllegalTransition { .. }) => {
            with_reason(Code::FailedPrecondition, e.to_string(), "ILLEGAL_TRANSITION")
        }
        GovernanceError::Refused(DomainError::Precondition(message)) => {
            with_reason(Code::FailedPrecondition, message, "PRECONDITION_FAILED")
        }
        e @ GovernanceError::Conflict { .. } => with_reason(Code::Aborted, e.to_string(), "CONCURRENT_MODIFICATION"),
        GovernanceError::NotFound(what) => not_found(what),
        e @ GovernanceError::RequestIdReused { .. } => {
            with_reason(Code::AlreadyExists, e.to_string(), "REQUEST_ID_REUSED")
        }
        GovernanceError::Log(e) => from_log(e),
        e @ GovernanceError::Undecodable { .. } => with_reason(Code::Internal, e.to_string(), "UNDECODABLE_EVENT"),
    }
}

/// Maps an attribution failure.
pub fn from_attribution(e: finops_attribution::AttributionError) -> Status {
    use finops_attribution::AttributionError as A;
    match e {
        A::Invalid { field, reason } => invalid_argument(vec![finops_domain::FieldViolation::new(field, reason)]),
        e @ A::NotIngested { .. } => with_reason(Code::FailedPrecondition, e.to_string(), "CUR_NOT_INGESTED"),
        e @ A::Outdated { .. } => with_reason(Code::FailedPrecondition, e.to_string(), "CUR_LAYOUT_OUTDATED"),
        e @ A::Query(_) => with_reason(Code::Internal, e.to_string(), "QUERY_FAILED"),
        e @ A::Usage(_) => with_reason(Code::Internal, e.to_string(), "LOG_USAGE_UNREADABLE"),
    }
}

/// Maps a CUR ingest's failure: bad input (a row, a delivery, a period) is the caller's to
/// fix, `INVALID_ARGUMENT` with the file, row, column and value in the message; storage and
/// the log are the server's.
pub fn from_ingest(e: finops_ingest::IngestError) -> Status {
    use finops_ingest::IngestError as E;
    match e {
        E::Invalid(_) | E::MixedPeriods { .. } | E::Empty(_) | E::Delivery { .. } | E::Parquet { .. } => {
            with_reason(Code::InvalidArgument, e.to_string(), "CUR_DELIVERY_INVALID")
        }
        E::Io { .. } => with_reason(Code::NotFound, e.to_string(), "CUR_DELIVERY_UNREADABLE"),
        E::Log(e) => from_governance(e),
        E::Objects(_) | E::Lines(_) => with_reason(Code::Unavailable, e.to_string(), "CUR_STORAGE_FAILED"),
    }
}
