//! TLS through the official driver (`tls=true` + `tlsCAFile`), refusal of plaintext clients
//! and of clients trusting another CA, TLS with a replica set, SCRAM and a failover, and the
//! binary's `--tls-cert`/`--tls-key`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use keel_testkit::{TestServer, TlsIdentity};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use support::raw::Raw;
use support::{fast_options, within};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn client(uri: &str) -> Client {
    let mut options = fast_options(uri).await;
    // Expected failures should be quick.
    options.server_selection_timeout = Some(Duration::from_millis(800));
    Client::with_options(options).unwrap()
}

async fn round_trip(client: &Client) -> mongodb::error::Result<Option<Document>> {
    let c = client.database("app").collection::<Document>("t");
    c.insert_one(doc! {"x": 1}).await?;
    c.find_one(doc! {"x": 1}).projection(doc! {"_id": 0}).await
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "keel-testkit-tls-{}-{}-{name}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn the_driver_connects_with_tls_and_a_ca_file() {
    let server = TestServer::builder()
        .tls(TlsIdentity::self_signed().unwrap())
        .start()
        .await
        .unwrap();
    let ca = server.tls_ca_file().unwrap().to_owned();
    assert!(ca.exists());
    assert!(
        server.uri().contains("?tls=true&tlsCAFile="),
        "{}",
        server.uri()
    );
    let c = client(&server.uri()).await;
    assert_eq!(round_trip(&c).await.unwrap(), Some(doc! {"x": 1}));
    // Through a hostname, too (the certificate names localhost).
    let by_name = server.uri().replace("127.0.0.1", "localhost");
    assert_eq!(
        round_trip(&client(&by_name).await).await.unwrap(),
        Some(doc! {"x": 1})
    );
    drop(c);
    drop(server);
    assert!(!ca.exists(), "the CA file is removed with the server");
}

#[tokio::test]
async fn plaintext_and_untrusting_clients_are_refused() {
    let server = TestServer::builder()
        .tls(TlsIdentity::self_signed().unwrap())
        .start()
        .await
        .unwrap();
    let plain = client(&format!("mongodb://{}/", server.addr())).await;
    assert!(
        round_trip(&plain).await.is_err(),
        "plaintext driver refused"
    );

    // On the wire: a plaintext hello gets no reply; the connection is closed.
    let mut raw = Raw::connect(server.addr()).await;
    raw.send(&doc! {"hello": 1, "$db": "admin"}, 0).await;
    assert!(
        within(raw.receive()).await.is_none(),
        "closed without a reply"
    );

    let other_ca = temp_file(
        "other-ca.pem",
        TlsIdentity::self_signed().unwrap().ca_pem().unwrap(),
    );
    let untrusting = client(&format!(
        "mongodb://{}/?tls=true&tlsCAFile={}",
        server.addr(),
        other_ca.display()
    ))
    .await;
    assert!(
        round_trip(&untrusting).await.is_err(),
        "a client trusting another CA refuses the server"
    );
    let _ = std::fs::remove_file(other_ca);

    // The server keeps serving TLS clients after all that.
    assert_eq!(
        round_trip(&client(&server.uri()).await).await.unwrap(),
        Some(doc! {"x": 1})
    );
}

#[tokio::test]
async fn tls_replica_set_with_authentication_survives_a_failover() {
    let server = TestServer::builder()
        .replica_set("rs0", 3)
        .auth("app", "secret")
        .tls(TlsIdentity::self_signed().unwrap())
        .start()
        .await
        .unwrap();
    let uri = server.uri();
    assert!(uri.contains("replicaSet=rs0&tls=true&tlsCAFile="), "{uri}");
    let c = client(&uri).await;
    assert_eq!(round_trip(&c).await.unwrap(), Some(doc! {"x": 1}));
    server.step_down().unwrap();
    let coll = c.database("app").collection::<Document>("t");
    coll.insert_one(doc! {"x": 2}).await.unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 2);
}

#[tokio::test]
async fn bad_identities_are_typed_errors() {
    let a = TlsIdentity::self_signed().unwrap();
    let b = TlsIdentity::self_signed().unwrap();
    let err = TestServer::builder()
        .tls(TlsIdentity::from_pem(a.cert_pem(), b.key_pem()))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, keel_testkit::TestkitError::InvalidConfig(_)),
        "{err}"
    );
    let missing = TlsIdentity::from_pem_files(
        std::path::Path::new("/nonexistent/cert.pem"),
        std::path::Path::new("/nonexistent/key.pem"),
    );
    assert!(matches!(
        missing,
        Err(keel_testkit::TestkitError::Persistence { .. })
    ));
}

#[tokio::test]
async fn binary_serves_tls_from_pem_files() {
    let id = TlsIdentity::self_signed().unwrap();
    let cert = temp_file("cert.pem", id.cert_pem());
    let key = temp_file("key.pem", id.key_pem());
    let ca = temp_file("ca.pem", id.ca_pem().unwrap());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel-testkit"))
        .args(["--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    within(BufReader::new(child.stdout.take().unwrap()).read_line(&mut line))
        .await
        .unwrap();
    let uri = line
        .split_whitespace()
        .find(|w| w.starts_with("mongodb://"))
        .unwrap()
        .to_owned();
    assert!(uri.ends_with("/?tls=true"), "{uri}");
    let c = client(&format!("{uri}&tlsCAFile={}", ca.display())).await;
    assert_eq!(round_trip(&c).await.unwrap(), Some(doc! {"x": 1}));
    child.kill().await.unwrap();
    for f in [cert, key, ca] {
        let _ = std::fs::remove_file(f);
    }
}
