//! SCRAM authentication through the official driver (SCRAM-SHA-256 with speculative
//! authentication, SCRAM-SHA-1), wrong passwords, unauthenticated clients, the raw replies,
//! and credentials kept out of every printed output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;

use keel_testkit::TestServer;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc, spec::BinarySubtype};
use mongodb::error::ErrorKind;
use support::raw::Raw;
use support::{code, fast_options, within};
use tokio::io::{AsyncBufReadExt, BufReader};

const PASSWORD: &str = "p@ss:w/rd%";

async fn client(uri: &str) -> Client {
    Client::with_options(fast_options(uri).await).unwrap()
}

async fn round_trip(client: &Client) -> mongodb::error::Result<Option<Document>> {
    let c = client.database("app").collection::<Document>("c");
    c.insert_one(doc! {"x": 1}).await?;
    c.find_one(doc! {"x": 1}).projection(doc! {"_id": 0}).await
}

#[tokio::test]
async fn scram_sha_256_and_sha_1_through_the_driver() {
    let server = TestServer::builder()
        .auth("app", PASSWORD)
        .start()
        .await
        .unwrap();
    assert!(
        server
            .uri()
            .starts_with("mongodb://app:p%40ss%3Aw%2Frd%25@127.0.0.1:")
    );
    // Default: the driver negotiates SCRAM-SHA-256 (saslSupportedMechs) and authenticates
    // speculatively inside the handshake.
    let negotiated = client(&server.uri()).await;
    assert_eq!(round_trip(&negotiated).await.unwrap(), Some(doc! {"x": 1}));
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        let explicit = client(&server.uri_with(&format!("authMechanism={mechanism}"))).await;
        assert_eq!(
            round_trip(&explicit).await.unwrap(),
            Some(doc! {"x": 1}),
            "{mechanism}"
        );
    }
}

#[tokio::test]
async fn wrong_passwords_and_unauthenticated_clients_are_refused() {
    let server = TestServer::builder()
        .auth("app", PASSWORD)
        .start()
        .await
        .unwrap();
    let bare = server.uri_without_credentials();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        let wrong = bare.replacen("mongodb://", "mongodb://app:nope@", 1)
            + &format!("?authMechanism={mechanism}");
        let err = round_trip(&client(&wrong).await).await.unwrap_err();
        match &*err.kind {
            ErrorKind::Authentication { message, .. } => {
                assert!(message.contains("Authentication failed"), "{message}");
            }
            other => panic!("{mechanism}: expected an authentication error, got {other:?}"),
        }
    }
    let anonymous = client(&bare).await;
    let err = round_trip(&anonymous).await.unwrap_err();
    assert_eq!(code(&err), Some(13));
    // The handshake and ping need no authentication.
    anonymous
        .database("admin")
        .run_command(doc! {"ping": 1})
        .await
        .unwrap();
}

#[tokio::test]
async fn connection_status_names_the_authenticated_user() {
    let server = TestServer::builder()
        .auth("app", PASSWORD)
        .start()
        .await
        .unwrap();
    let status = |client: Client| async move {
        let reply = client
            .database("admin")
            .run_command(doc! {"connectionStatus": 1})
            .await
            .unwrap();
        reply.get_document("authInfo").unwrap().clone()
    };
    let authenticated = status(client(&server.uri()).await).await;
    assert_eq!(
        authenticated.get_array("authenticatedUsers").unwrap(),
        &vec![Bson::from(doc! {"user": "app", "db": "admin"})]
    );
    // mongod answers it before authentication too, naming nobody.
    let anonymous = status(client(&server.uri_without_credentials()).await).await;
    assert_eq!(
        anonymous,
        doc! {"authenticatedUsers": [], "authenticatedUserRoles": []}
    );
}

#[tokio::test]
async fn credentials_for_a_server_without_authentication_fail_as_on_mongod() {
    let server = TestServer::start().await.unwrap();
    let uri = server
        .uri()
        .replacen("mongodb://", "mongodb://app:secret@", 1);
    let err = round_trip(&client(&uri).await).await.unwrap_err();
    match &*err.kind {
        ErrorKind::Authentication { message, .. } => {
            assert!(message.contains("Authentication failed"), "{message}");
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

fn payload(s: &str) -> Bson {
    Bson::Binary(mongodb::bson::Binary {
        subtype: BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    })
}

#[tokio::test]
async fn raw_replies_match_mongod() {
    let server = TestServer::builder()
        .auth("app", PASSWORD)
        .start()
        .await
        .unwrap();
    let mut raw = Raw::connect(server.addr()).await;
    let e = raw.command(doc! {"find": "c", "$db": "app"}).await;
    assert_eq!(e.get_i32("code").unwrap(), 13);
    assert_eq!(e.get_str("codeName").unwrap(), "Unauthorized");
    assert_eq!(
        e.get_str("errmsg").unwrap(),
        "Command find requires authentication"
    );
    let hello = raw
        .command(doc! {"hello": 1, "saslSupportedMechs": "admin.app", "$db": "admin"})
        .await;
    assert_eq!(
        hello.get_array("saslSupportedMechs").unwrap(),
        &vec![Bson::from("SCRAM-SHA-1"), Bson::from("SCRAM-SHA-256")]
    );
    let hello = raw
        .command(doc! {"hello": 1, "saslSupportedMechs": "admin.nobody", "$db": "admin"})
        .await;
    assert!(!hello.contains_key("saslSupportedMechs"));
    let unknown = raw
        .command(doc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": payload("n,,n=nobody,r=abc"), "$db": "admin"})
        .await;
    assert_eq!(unknown.get_i32("code").unwrap(), 18);
    assert_eq!(unknown.get_str("codeName").unwrap(), "AuthenticationFailed");
    let first = raw
        .command(doc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": payload("n,,n=app,r=abc"), "$db": "admin"})
        .await;
    assert_eq!(first.get_i32("conversationId").unwrap(), 1);
    assert!(!first.get_bool("done").unwrap());
    let forged = raw
        .command(doc! {"saslContinue": 1, "conversationId": 1, "payload": payload("c=biws,r=abc,p=AAAA"), "$db": "admin"})
        .await;
    assert_eq!(forged.get_i32("code").unwrap(), 18);
    let mechanism = raw
        .command(
            doc! {"saslStart": 1, "mechanism": "PLAIN", "payload": payload("x"), "$db": "admin"},
        )
        .await;
    assert_eq!(mechanism.get_i32("code").unwrap(), 334);
    let still = raw.command(doc! {"find": "c", "$db": "app"}).await;
    assert_eq!(
        still.get_i32("code").unwrap(),
        13,
        "failed attempts do not authenticate"
    );
}

#[tokio::test]
async fn replica_set_with_authentication() {
    let server = TestServer::builder()
        .replica_set("rs0", 2)
        .auth("app", PASSWORD)
        .start()
        .await
        .unwrap();
    let client = client(&server.uri()).await;
    assert_eq!(round_trip(&client).await.unwrap(), Some(doc! {"x": 1}));
    server.step_down().unwrap();
    assert_eq!(round_trip(&client).await.unwrap(), Some(doc! {"x": 1}));
}

#[tokio::test]
async fn credentials_never_appear_in_printed_output() {
    let builder = TestServer::builder().auth("app", PASSWORD);
    assert!(!format!("{builder:?}").contains(PASSWORD));
    let server = builder.start().await.unwrap();
    assert!(!format!("{server:?}").contains(PASSWORD));
    assert!(!server.uri_without_credentials().contains("app"));

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel-testkit"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--user",
            "app",
            "--password",
            PASSWORD,
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    within(BufReader::new(child.stdout.take().unwrap()).read_line(&mut line))
        .await
        .unwrap();
    assert!(line.contains("SCRAM user 'app'"), "{line}");
    assert!(
        !line.contains(PASSWORD) && !line.contains("p%40ss"),
        "{line}"
    );
    let uri = line
        .split_whitespace()
        .find(|w| w.starts_with("mongodb://"))
        .unwrap()
        .replacen("mongodb://", "mongodb://app:p%40ss%3Aw%2Frd%25@", 1);
    assert_eq!(
        round_trip(&client(&uri).await).await.unwrap(),
        Some(doc! {"x": 1})
    );
    child.kill().await.unwrap();
}
