//! Replica sets through the official driver: discovery of all members, `hello` fields, a
//! three-member failover the driver follows with a retried write, `replSetStepDown`, reads
//! served by secondaries, awaitable `hello`, and member-state errors on the raw wire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use keel_testkit::{FailCommand, TestServer, TestkitError};
use mongodb::bson::{Bson, Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;
use mongodb::event::sdam::{SdamEvent, TopologyDescription};
use mongodb::options::{ClientOptions, ReadPreference, SelectionCriteria};
use mongodb::{Client, ServerType, TopologyType};
use support::raw::{MORE_TO_COME, Raw};
use support::{code, fast_options, within};
use tokio::sync::{mpsc, watch};

/// A driver client plus what it reports: the topology it sees and every command outcome.
struct Observed {
    client: Client,
    topology: watch::Receiver<Option<TopologyDescription>>,
    commands: mpsc::UnboundedReceiver<CommandEvent>,
}

async fn observed(uri: &str) -> Observed {
    let mut options: ClientOptions = fast_options(uri).await;
    let (topo_tx, topology) = watch::channel(None);
    options.sdam_event_handler = Some(EventHandler::callback(move |e: SdamEvent| {
        if let SdamEvent::TopologyDescriptionChanged(e) = e {
            topo_tx.send_replace(Some(e.new_description));
        }
    }));
    let (cmd_tx, commands) = mpsc::unbounded_channel();
    options.command_event_handler = Some(EventHandler::callback(move |e: CommandEvent| {
        let _ = cmd_tx.send(e);
    }));
    Observed {
        client: Client::with_options(options).unwrap(),
        topology,
        commands,
    }
}

/// Waits until the driver sees `primary` as the set's primary and every other member as a
/// secondary.
async fn await_primary(o: &mut Observed, server: &TestServer, primary: usize) {
    let hosts: Vec<String> = server.members().iter().map(ToString::to_string).collect();
    within(o.topology.wait_for(|t| {
        let Some(t) = t else { return false };
        let servers = t.servers();
        t.topology_type() == TopologyType::ReplicaSetWithPrimary
            && servers.len() == hosts.len()
            && servers.iter().all(|(addr, info)| {
                let i = hosts.iter().position(|h| *h == addr.to_string());
                match i {
                    Some(i) if i == primary => info.server_type() == ServerType::RsPrimary,
                    Some(_) => info.server_type() == ServerType::RsSecondary,
                    None => false,
                }
            })
    }))
    .await
    .unwrap();
}

#[tokio::test]
async fn driver_discovers_every_member_and_hello_describes_the_set() {
    let server = TestServer::replica_set("rs0", 3).await.unwrap();
    let hosts: Vec<String> = server.members().iter().map(ToString::to_string).collect();
    assert_eq!(
        server.uri(),
        format!("mongodb://{}/?replicaSet=rs0", hosts.join(","))
    );
    assert_eq!(
        server.uri_with("appName=x"),
        format!("{}&appName=x", server.uri())
    );
    assert_eq!(server.replica_set_name(), Some("rs0"));
    let mut o = observed(&server.uri()).await;
    await_primary(&mut o, &server, 0).await;
    let t = o.topology.borrow().clone().unwrap();
    assert_eq!(t.set_name().map(String::as_str), Some("rs0"));
    assert!(t.max_election_id().is_some());

    let c = o.client.database("app").collection::<Document>("c");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    assert_eq!(c.find_one(doc! {}).await.unwrap(), Some(doc! {"_id": 1}));

    for (i, addr) in server.members().into_iter().enumerate() {
        let mut raw = Raw::connect(addr).await;
        let hello = raw.command(doc! {"hello": 1, "$db": "admin"}).await;
        assert_eq!(hello.get_str("setName").unwrap(), "rs0");
        let reported: Vec<&str> = hello
            .get_array("hosts")
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert_eq!(reported, hosts);
        assert_eq!(hello.get_str("me").unwrap(), hosts[i]);
        assert_eq!(hello.get_str("primary").unwrap(), hosts[0]);
        assert_eq!(hello.get_bool("isWritablePrimary").unwrap(), i == 0);
        assert_eq!(hello.get_bool("secondary").unwrap(), i != 0);
        assert_eq!(hello.get_i32("setVersion").unwrap(), 1);
        assert_eq!(hello.contains_key("electionId"), i == 0);
        let tv = hello.get_document("topologyVersion").unwrap();
        assert!(tv.get_object_id("processId").is_ok() && tv.get_i64("counter").is_ok());
        assert!(hello.get_document("$clusterTime").is_ok());
        assert!(hello.get_timestamp("operationTime").is_ok());
        let legacy = raw.command(doc! {"isMaster": 1, "$db": "admin"}).await;
        assert_eq!(legacy.get_bool("ismaster").unwrap(), i == 0);
    }
}

#[tokio::test]
async fn three_member_failover_the_driver_follows_with_a_retried_write() {
    let server = TestServer::replica_set("rs0", 3).await.unwrap();
    let mut o = observed(&server.uri()).await;
    await_primary(&mut o, &server, 0).await;
    let c = o.client.database("app").collection::<Document>("orders");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    while o.commands.try_recv().is_ok() {}
    let before = o
        .client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .await
        .unwrap();
    let time_before = before.get_timestamp("operationTime").unwrap();

    // Hold the next insert inside the old primary long enough to step down under it: the
    // member-state check runs after the fail point, so the write meets a secondary.
    server
        .fail_command(
            FailCommand::new(["insert"])
                .block_connection(Duration::from_millis(1500))
                .times(1),
        )
        .unwrap();
    let write = tokio::spawn({
        let c = c.clone();
        async move { c.insert_one(doc! {"_id": 2}).await }
    });
    let started = within(async {
        loop {
            if let Some(CommandEvent::Started(e)) = o.commands.recv().await
                && e.command_name == "insert"
            {
                return e;
            }
        }
    })
    .await;
    let hosts: Vec<String> = server.members().iter().map(ToString::to_string).collect();
    assert_eq!(started.connection.address.to_string(), hosts[0]);
    assert_eq!(server.step_down().unwrap(), 1);
    assert_eq!(server.primary(), Some(1));

    within(write)
        .await
        .unwrap()
        .expect("the driver retried on the new primary");
    let mut outcomes = Vec::new();
    while let Ok(e) = o.commands.try_recv() {
        match e {
            CommandEvent::Failed(f) if f.command_name == "insert" => outcomes.push((
                f.connection.address.to_string(),
                code(&f.failure),
                f.failure.contains_label("RetryableWriteError"),
            )),
            CommandEvent::Succeeded(s) if s.command_name == "insert" => {
                outcomes.push((s.connection.address.to_string(), None, false));
            }
            _ => {}
        }
    }
    assert_eq!(
        outcomes,
        vec![
            (hosts[0].clone(), Some(10107), true),
            (hosts[1].clone(), None, false)
        ]
    );
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2, "written once");
    await_primary(&mut o, &server, 1).await;

    // The old primary's hello changed; cluster time moved on.
    let mut raw = Raw::connect(server.members()[0]).await;
    let hello = raw.command(doc! {"hello": 1, "$db": "admin"}).await;
    assert!(!hello.get_bool("isWritablePrimary").unwrap());
    assert_eq!(hello.get_str("primary").unwrap(), hosts[1]);
    assert!(hello.get_timestamp("operationTime").unwrap() > time_before);

    // replSetStepDown through the driver: member 1 hands over to member 2.
    let reply = o
        .client
        .database("admin")
        .run_command(doc! {"replSetStepDown": 60})
        .await
        .unwrap();
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0);
    assert_eq!(server.primary(), Some(2));
    await_primary(&mut o, &server, 2).await;
    c.insert_one(doc! {"_id": 3}).await.unwrap();

    // elect() picks any member; the term (electionId) keeps growing.
    server.elect(0).unwrap();
    await_primary(&mut o, &server, 0).await;
    c.insert_one(doc! {"_id": 4}).await.unwrap();
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 4);
    let status = o
        .client
        .database("admin")
        .run_command(doc! {"replSetGetStatus": 1})
        .await
        .unwrap();
    assert_eq!(status.get_i64("term").unwrap(), 4);
    let states: Vec<&str> = status
        .get_array("members")
        .unwrap()
        .iter()
        .map(|m| m.as_document().unwrap().get_str("stateStr").unwrap())
        .collect();
    assert_eq!(states, ["PRIMARY", "SECONDARY", "SECONDARY"]);
}

#[tokio::test]
async fn secondary_reads_are_served_by_secondaries() {
    let server = TestServer::replica_set("rs0", 3).await.unwrap();
    let primary = Client::with_options(fast_options(&server.uri()).await).unwrap();
    primary
        .database("app")
        .collection::<Document>("c")
        .insert_one(doc! {"_id": 1, "v": "x"})
        .await
        .unwrap();
    let mut o = observed(&server.uri_with("readPreference=secondary")).await;
    await_primary(&mut o, &server, 0).await;
    let c = o.client.database("app").collection::<Document>("c");
    for _ in 0..4 {
        assert_eq!(
            c.find_one(doc! {"_id": 1}).await.unwrap(),
            Some(doc! {"_id": 1, "v": "x"})
        );
    }
    let hosts: Vec<String> = server.members().iter().map(ToString::to_string).collect();
    let mut served = 0;
    while let Ok(e) = o.commands.try_recv() {
        if let CommandEvent::Succeeded(s) = e
            && s.command_name == "find"
        {
            assert_ne!(s.connection.address.to_string(), hosts[0]);
            served += 1;
        }
    }
    assert_eq!(served, 4);
    // An explicit primary read preference still goes to the primary.
    let n = c
        .count_documents(doc! {})
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn secondaries_refuse_writes_and_unflagged_reads_on_the_wire() {
    let server = TestServer::replica_set("rs0", 2).await.unwrap();
    let mut raw = Raw::connect(server.members()[1]).await;
    let e = raw.command(doc! {"find": "c", "$db": "app"}).await;
    assert_eq!(e.get_i32("code").unwrap(), 13435);
    assert_eq!(e.get_str("codeName").unwrap(), "NotPrimaryNoSecondaryOk");
    let ok = raw
        .command(
            doc! {"find": "c", "$db": "app", "$readPreference": {"mode": "secondaryPreferred"}},
        )
        .await;
    assert_eq!(ok.get_f64("ok").unwrap(), 1.0);
    let retryable = raw
        .command(doc! {"insert": "c", "documents": [{"a": 1}], "txnNumber": 1i64, "$db": "app"})
        .await;
    assert_eq!(retryable.get_i32("code").unwrap(), 10107);
    assert_eq!(retryable.get_str("codeName").unwrap(), "NotWritablePrimary");
    assert_eq!(
        retryable.get_array("errorLabels").unwrap(),
        &vec![Bson::from("RetryableWriteError")]
    );
    assert!(retryable.get_document("topologyVersion").is_ok());
    let plain = raw
        .command(doc! {"insert": "c", "documents": [{"a": 1}], "$db": "app"})
        .await;
    assert_eq!(plain.get_i32("code").unwrap(), 10107);
    assert!(!plain.contains_key("errorLabels"));
    let step = raw
        .command(doc! {"replSetStepDown": 60, "$db": "admin"})
        .await;
    assert_eq!(step.get_i32("code").unwrap(), 10107);
    // An unacknowledged write to a secondary: mongod hangs up.
    raw.send(
        &doc! {"insert": "c", "documents": [{"a": 1}], "writeConcern": {"w": 0}, "$db": "app"},
        MORE_TO_COME,
    )
    .await;
    assert!(within(raw.receive()).await.is_none(), "connection closed");
    assert_eq!(server.primary(), Some(0), "nothing changed the roles");
}

#[tokio::test]
async fn awaitable_hello_waits_for_a_role_change() {
    let server = TestServer::replica_set("rs0", 2).await.unwrap();
    let mut raw = Raw::connect(server.members()[1]).await;
    let hello = raw.command(doc! {"hello": 1, "$db": "admin"}).await;
    let tv = hello.get_document("topologyVersion").unwrap().clone();

    // Nothing changes: the reply comes after maxAwaitTimeMS, with the same version.
    let start = Instant::now();
    let same = raw
        .command(doc! {"hello": 1, "topologyVersion": tv.clone(), "maxAwaitTimeMS": 150i64, "$db": "admin"})
        .await;
    assert!(start.elapsed() >= Duration::from_millis(140));
    assert_eq!(same.get_document("topologyVersion").unwrap(), &tv);

    // A step-down answers a waiting hello at once.
    raw.send(
        &doc! {"hello": 1, "topologyVersion": tv.clone(), "maxAwaitTimeMS": 20_000i64, "$db": "admin"},
        0,
    )
    .await;
    server.step_down().unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(5), raw.receive())
        .await
        .expect("answered before maxAwaitTimeMS")
        .unwrap();
    assert!(changed.get_bool("isWritablePrimary").unwrap());
    let new_tv = changed.get_document("topologyVersion").unwrap();
    assert_eq!(
        new_tv.get_i64("counter").unwrap(),
        tv.get_i64("counter").unwrap() + 1
    );

    // A restart is a new process: new processId, so a stale version is answered at once.
    server.restart().await.unwrap();
    let mut raw = Raw::connect(server.members()[1]).await;
    let after = raw
        .command(doc! {"hello": 1, "topologyVersion": new_tv.clone(), "maxAwaitTimeMS": 20_000i64, "$db": "admin"})
        .await;
    assert_ne!(
        after
            .get_document("topologyVersion")
            .unwrap()
            .get_object_id("processId")
            .unwrap(),
        new_tv.get_object_id("processId").unwrap()
    );
}

#[tokio::test]
async fn restart_keeps_data_and_roles() {
    let server = TestServer::replica_set("rs0", 3).await.unwrap();
    let mut o = observed(&server.uri()).await;
    await_primary(&mut o, &server, 0).await;
    let c = o.client.database("app").collection::<Document>("c");
    c.insert_one(doc! {"_id": 1}).await.unwrap();
    server.elect(2).unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.primary(), Some(2));
    // The pooled connections died with the restart; the driver reconnects by itself
    // (a network error on the first attempt is retried once).
    let mut found = c.find_one(doc! {"_id": 1}).await;
    if found.is_err() {
        found = c.find_one(doc! {"_id": 1}).await;
    }
    assert_eq!(found.unwrap(), Some(doc! {"_id": 1}));
    await_primary(&mut o, &server, 2).await;
}

#[tokio::test]
async fn bad_replica_set_requests_are_typed_errors() {
    let single = TestServer::replica_set("solo", 1).await.unwrap();
    assert!(matches!(single.step_down(), Err(TestkitError::Election(_))));
    let mut raw = Raw::connect(single.addr()).await;
    let e = raw
        .command(doc! {"replSetStepDown": 60, "$db": "admin"})
        .await;
    assert_eq!(e.get_i32("code").unwrap(), 262);
    let e = raw
        .command(doc! {"replSetStepDown": 60, "$db": "app"})
        .await;
    assert_eq!(e.get_i32("code").unwrap(), 13);
    assert!(matches!(single.elect(1), Err(TestkitError::Election(_))));
    // The one member is primary and takes writes.
    let client = Client::with_options(fast_options(&single.uri()).await).unwrap();
    client
        .database("app")
        .collection::<Document>("c")
        .insert_one(doc! {"a": 1})
        .await
        .unwrap();

    let standalone = TestServer::start().await.unwrap();
    assert!(matches!(
        standalone.step_down(),
        Err(TestkitError::Election(_))
    ));
    assert_eq!(standalone.primary(), Some(0));
    let mut raw = Raw::connect(standalone.addr()).await;
    let e = raw
        .command(doc! {"replSetGetStatus": 1, "$db": "admin"})
        .await;
    assert_eq!(e.get_i32("code").unwrap(), 76);
    let hello = raw.command(doc! {"hello": 1, "$db": "admin"}).await;
    assert!(!hello.contains_key("topologyVersion") && !hello.contains_key("$clusterTime"));

    for (name, members) in [("rs0", 0), ("", 3), ("a/b", 3), ("rs0", 51)] {
        let err = TestServer::replica_set(name, members).await.unwrap_err();
        assert!(matches!(err, TestkitError::InvalidConfig(_)), "{err}");
    }
}

#[tokio::test]
async fn retryable_writes_run_once() {
    let server = TestServer::replica_set("rs0", 1).await.unwrap();
    let client = Client::with_options(fast_options(&server.uri()).await).unwrap();
    let c = client.database("app").collection::<Document>("once");
    // The write applies, then its reply carries a retryable write concern error: the driver
    // retries, and the server answers the first result instead of inserting again (which
    // would be a duplicate key error on the driver-generated _id).
    server
        .fail_command(
            FailCommand::new(["insert"])
                .write_concern_error(doc! {"code": 91, "errmsg": "shutting down"})
                .times(1),
        )
        .unwrap();
    c.insert_one(doc! {"v": 1})
        .await
        .expect("retried to success");
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 1);

    let mut raw = Raw::connect(server.addr()).await;
    let lsid = doc! {"id": mongodb::bson::Binary {
    subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![9; 16] }};
    let insert = |txn: i64, id: i32| {
        doc! {"insert": "raw", "documents": [{"_id": id}], "lsid": lsid.clone(),
        "txnNumber": txn, "$db": "app"}
    };
    for _ in 0..2 {
        let reply = raw.command(insert(1, 1)).await;
        assert_eq!(reply.get_i32("n").unwrap(), 1, "{reply}");
    }
    let old = raw.command(insert(0, 2)).await;
    assert_eq!(old.get_i32("code").unwrap(), 225);
    let next = raw.command(insert(2, 1)).await;
    assert!(
        next.contains_key("writeErrors"),
        "a new txnNumber runs again"
    );
    let count = raw.command(doc! {"count": "raw", "$db": "app"}).await;
    assert_eq!(count.get_i32("n").unwrap(), 1);
}
