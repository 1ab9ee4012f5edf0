//! Server lifecycle: stop, restart on the same port (data kept, connections dropped), pause
//! (a black hole) and persistence to a data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keel_testkit::TestServer;
use mongodb::Client;
use mongodb::bson::{Document, doc};
use support::{Fixture, fast_options, within};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "keel-testkit-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn stop_refuses_and_restart_keeps_port_and_data() {
    let f = Fixture::new().await;
    let c = f.coll("life");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    let addr = f.server.addr();
    let mut raw = TcpStream::connect(addr).await.unwrap();

    f.server.stop().await;
    assert!(!f.server.is_running());
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // Open connections were dropped.
    let mut buf = [0u8; 1];
    assert!(matches!(within(raw.read(&mut buf)).await, Ok(0) | Err(_)));
    assert!(
        c.find_one(doc! {}).await.is_err(),
        "no server while stopped"
    );

    f.server.restart().await.unwrap();
    assert_eq!(f.server.addr(), addr);
    let got = within(c.find_one(doc! {"_id": 1})).await.unwrap();
    assert_eq!(got, Some(doc! {"_id": 1}));
}

#[tokio::test]
async fn restart_drops_connections_and_clears_fail_points() {
    let f = Fixture::new().await;
    let c = f.coll("r");
    c.insert_one(doc! {"x": 1}).await.unwrap();
    f.server
        .fail_command(keel_testkit::FailCommand::new(["find"]).error_code(2))
        .unwrap();
    let mut raw = TcpStream::connect(f.server.addr()).await.unwrap();
    f.server.restart().await.unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(within(raw.read(&mut buf)).await, Ok(0) | Err(_)),
        "old connection closed"
    );
    // The driver's pooled connection died; its next operation reconnects (possibly after one
    // network error) and the fail point is gone.
    let mut result = c.find_one(doc! {}).await;
    if result.is_err() {
        result = c.find_one(doc! {}).await;
    }
    assert!(result.unwrap().is_some());
}

#[tokio::test]
async fn pause_holds_replies_until_resume() {
    let f = Fixture::new().await;
    let c = f.coll("p");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    f.server.pause();
    let held = tokio::time::timeout(Duration::from_millis(300), c.find_one(doc! {"_id": 1})).await;
    assert!(held.is_err(), "no reply while paused");
    // New connections are accepted (the kernel completes the handshake) but never answered.
    let mut raw = TcpStream::connect(f.server.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), raw.read(&mut buf))
            .await
            .is_err()
    );
    let pending = tokio::spawn({
        let c = c.clone();
        async move { c.find_one(doc! {"_id": 1}).await }
    });
    f.server.resume();
    assert!(
        within(pending).await.unwrap().unwrap().is_some(),
        "held request answered on resume"
    );
}

#[tokio::test]
async fn data_dir_survives_a_new_server_and_restart() {
    let dir = temp_dir("persist");
    let addr;
    {
        let server = TestServer::builder().data_dir(&dir).start().await.unwrap();
        addr = server.addr();
        let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
        let c = client.database("p").collection::<Document>("c");
        c.insert_many(vec![
            doc! {"_id": 1, "v": 1},
            doc! {"_id": 2, "v": 2},
            doc! {"_id": 3},
        ])
        .await
        .unwrap();
        c.update_one(doc! {"_id": 1}, doc! {"$set": {"v": 10}})
            .await
            .unwrap();
        c.delete_one(doc! {"_id": 3}).await.unwrap();
        c.create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"v": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
        client
            .database("gone")
            .collection::<Document>("x")
            .insert_one(doc! {"a": 1})
            .await
            .unwrap();
        client.database("gone").drop().await.unwrap();

        // restart() reloads from disk.
        server.restart().await.unwrap();
        assert_eq!(within(c.count_documents(doc! {})).await.unwrap(), 2);
        server.stop().await;
    }
    let _ = addr;
    // A brand-new server (think: a new process) on the same directory.
    let server = TestServer::builder().data_dir(&dir).start().await.unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("p").collection::<Document>("c");
    let mut docs = Vec::new();
    let mut cursor = c.find(doc! {}).sort(doc! {"_id": 1}).await.unwrap();
    while cursor.advance().await.unwrap() {
        docs.push(cursor.deserialize_current().unwrap());
    }
    assert_eq!(
        docs,
        vec![doc! {"_id": 1, "v": 10}, doc! {"_id": 2, "v": 2}]
    );
    assert_eq!(c.list_index_names().await.unwrap(), vec!["_id_", "v_1"]);
    assert!(
        c.insert_one(doc! {"v": 2}).await.is_err(),
        "unique index restored"
    );
    assert!(
        !client
            .list_database_names()
            .await
            .unwrap()
            .contains(&"gone".to_owned())
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn corrupt_data_dir_is_a_typed_error() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).unwrap();
    // A well-formed BSON document that is not a journal record.
    let mut bytes = Vec::new();
    doc! {"hello": "world"}.to_writer(&mut bytes).unwrap();
    std::fs::write(dir.join("journal.bson"), bytes).unwrap();
    let err = TestServer::builder()
        .data_dir(&dir)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, keel_testkit::TestkitError::CorruptData { .. }),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bind_conflict_is_a_typed_error() {
    let server = TestServer::start().await.unwrap();
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = TestServer::builder()
        .bind(blocker.local_addr().unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, keel_testkit::TestkitError::Bind { .. }),
        "{err}"
    );
    drop(server);
}
