//! `$changeStreamSplitLargeEvent` through the official driver: an update whose event is over
//! 16 MB (pre-image, post-image and update description of a 9 MB field) comes as three
//! fragments with their own tokens, a resume from a fragment's token continues with the next
//! fragment, and without the stage the event is `BSONObjectTooLarge`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::StreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::ChangeStream;
use mongodb::options::{FullDocumentBeforeChangeType, FullDocumentType};
use support::{code, next_event, replica_set, within};

const NINE_MB: usize = 9 * 1024 * 1024;

async fn open(
    c: &Collection<Document>,
    pipeline: Vec<Document>,
    after: Option<Bson>,
) -> mongodb::error::Result<ChangeStream<Document>> {
    let mut watch = c
        .watch()
        .pipeline(pipeline)
        .full_document(FullDocumentType::Required)
        .full_document_before_change(FullDocumentBeforeChangeType::Required);
    if let Some(Bson::Document(token)) = after {
        watch = watch.resume_after(
            mongodb::bson::from_document::<mongodb::change_stream::event::ResumeToken>(token)
                .unwrap(),
        );
    }
    within(watch).await.map(|s| s.with_type::<Document>())
}

#[tokio::test]
async fn an_event_over_16_mb_comes_as_fragments_and_resumes_between_them() {
    let (_server, client) = replica_set(1).await;
    let db = client.database("app");
    within(
        db.run_command(doc! {"create": "big", "changeStreamPreAndPostImages": {"enabled": true}}),
    )
    .await
    .unwrap();
    let c = db.collection::<Document>("big");
    let split = vec![doc! {"$changeStreamSplitLargeEvent": {}}];
    let mut stream = open(&c, split.clone(), None).await.unwrap();
    let start =
        Bson::Document(mongodb::bson::to_document(&stream.resume_token().unwrap()).unwrap());
    within(c.insert_one(doc! {"_id": 1, "a": "x".repeat(NINE_MB)}))
        .await
        .unwrap();
    within(c.update_one(doc! {"_id": 1}, doc! {"$set": {"a": "y".repeat(NINE_MB)}}))
        .await
        .unwrap();

    let insert = next_event(&mut stream).await;
    assert_eq!(insert.get_str("operationType").unwrap(), "insert");
    assert!(!insert.contains_key("splitEvent"), "under 16 MB: whole");
    let mut fragments = Vec::new();
    for k in 1..=3 {
        let f = next_event(&mut stream).await;
        assert_eq!(
            f.get_document("splitEvent").unwrap(),
            &doc! {"fragment": k, "of": 3}
        );
        fragments.push(f);
    }
    let ids: Vec<&Document> = fragments
        .iter()
        .map(|f| f.get_document("_id").unwrap())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    let mut event = Document::new();
    for f in &fragments {
        for (k, v) in f {
            if k != "_id" && k != "splitEvent" {
                event.insert(k.clone(), v.clone());
            }
        }
    }
    assert_eq!(event.get_str("operationType").unwrap(), "update");
    assert_eq!(
        event
            .get_document("fullDocument")
            .unwrap()
            .get_str("a")
            .unwrap()
            .len(),
        NINE_MB
    );
    assert_eq!(
        event
            .get_document("fullDocumentBeforeChange")
            .unwrap()
            .get_str("a")
            .unwrap(),
        "x".repeat(NINE_MB)
    );
    assert!(event.get_document("updateDescription").is_ok());

    // From the second fragment's token: the third fragment only, then the next event.
    let mut resumed = open(&c, split.clone(), Some(Bson::Document(ids[1].clone())))
        .await
        .unwrap();
    let third = next_event(&mut resumed).await;
    assert_eq!(third.get_document("_id").unwrap(), ids[2]);
    within(c.insert_one(doc! {"_id": 2})).await.unwrap();
    let after = next_event(&mut resumed).await;
    assert_eq!(after.get_document("documentKey").unwrap(), &doc! {"_id": 2});

    // A fragment's token without the stage: ChangeStreamFatalError.
    let err = open(&c, vec![], Some(Bson::Document(ids[1].clone())))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(280), "{err}");
    // The same event without the stage: BSONObjectTooLarge (on the aggregate, whose first
    // batch reaches it, as on mongod).
    let err = match open(&c, vec![], Some(start)).await {
        Err(e) => e,
        Ok(mut s) => loop {
            match within(s.next()).await.unwrap() {
                Ok(_) => continue,
                Err(e) => break e,
            }
        },
    };
    assert_eq!(code(&err), Some(10334), "{err}");
    // The stage must be last.
    let err = open(
        &c,
        vec![
            doc! {"$changeStreamSplitLargeEvent": {}},
            doc! {"$match": {}},
        ],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), Some(7_182_802), "{err}");
}
