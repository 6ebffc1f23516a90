//! End to end through real gRPC: a running server, a real store, tonic clients.

use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_eventlog::{ExpectedVersion, NewEvent, StreamId};
use finops_proto::v1::event_log_service_client::EventLogServiceClient;
use finops_proto::v1::{GetLogHeadRequest, VerifyLogRequest};
use finops_server::auth::Role;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_on_postgres_answers_health_reflection_and_the_log_head() {
    let Some(url) = fresh_postgres_url().await else { return };
    exercise(RunningServer::start(&url).await, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_on_the_embedded_store_answers_the_same() {
    exercise(RunningServer::start(&fresh_sqlite_url()).await, "sqlite").await;
}

async fn exercise(server: RunningServer, backend: &str) {
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();

    // Health: overall and per service.
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "finops.v1.EventLogService"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "health of `{service}`");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.v1.Nothing".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // Reflection v1alpha (what grpcurl 1.8 speaks) lists every service.
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(Ok(response)) = responses.next().await else { panic!("no reflection answer") };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("not a list") };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "finops.v1.BusinessRequestService",
        "finops.v1.CatalogService",
        "finops.v1.EventLogService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }

    // The log head follows appends; verification is intact. Only roles that answer for the
    // log may read it; a call without a token is unauthenticated.
    let mut log = EventLogServiceClient::new(channel);
    let auditor = server.token("aud-kim", Role::Auditor);
    let anonymous = log.get_log_head(GetLogHeadRequest {}).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let po = log
        .get_log_head(authed(GetLogHeadRequest {}, &server.token("po-maria", Role::ProductOwner)))
        .await
        .unwrap_err();
    assert_eq!(po.code(), tonic::Code::PermissionDenied);
    let empty = log.get_log_head(authed(GetLogHeadRequest {}, &auditor)).await.unwrap().into_inner();
    assert_eq!((empty.position, empty.backend.as_str()), (0, backend));
    let stream = StreamId::new("business-request-1").unwrap();
    server
        .store
        .append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("Submitted", serde_json::json!({"n": 1}))])
        .await
        .unwrap();
    let sealed = server.store.seal_committed().await.unwrap();
    let head = log.get_log_head(authed(GetLogHeadRequest {}, &auditor)).await.unwrap().into_inner();
    assert_eq!((head.position, head.hash.clone()), (1, sealed.hash.to_hex()));
    let verified = log
        .verify_log(authed(
            VerifyLogRequest { expected_head_hash: head.hash.clone(), expected_head_position: 1 },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.verified_through, 1);

    // A recorded head that the chain no longer holds is reported, not ignored.
    let forged = "0".repeat(64);
    let mismatch = log
        .verify_log(authed(VerifyLogRequest { expected_head_hash: forged, expected_head_position: 1 }, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(!mismatch.intact);
    assert_eq!(mismatch.first_break.unwrap().kind, "HEAD_MISMATCH");

    // Bad input is INVALID_ARGUMENT naming the field.
    let bad = log
        .verify_log(authed(VerifyLogRequest { expected_head_hash: "xyz".into(), expected_head_position: 1 }, &auditor))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("expected_head_hash"), "{}", bad.message());

    server.shutdown().await.expect("graceful shutdown");
}
