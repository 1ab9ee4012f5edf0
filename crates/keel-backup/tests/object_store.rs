//! Object-storage destinations (feature `object-store`) against object_store's in-memory
//! store: a backup uploaded and downloaded back is intact and restores; an upload without its
//! manifest (interrupted) is refused; a damaged object fails verification and leaves nothing.
#![cfg(feature = "object-store")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

mod support;

use keel_backup::remote::{download, upload};
use keel_backup::{Restore, verify};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use support::cluster::{any_deployment, count, seeded_gzip_backup};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keel-backup-os-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_object_storage_and_come_back_verified() {
    let (_server, uri) = any_deployment().await;
    let db = format!("kb_os_{}", std::process::id());
    let dir = scratch("src");
    let (client, keel) = seeded_gzip_backup(&uri, &db, 500, &"z".repeat(3000), &dir).await;

    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let files = upload(&dir, store.as_ref(), "backups/b1").await.unwrap();
    assert_eq!(files, 4, "prelude, metadata, documents, manifest");
    let back = scratch("back");
    let manifest = download(store.as_ref(), "backups/b1", &back).await.unwrap();
    assert_eq!(manifest.documents(), 500);
    verify(&back).unwrap();
    Restore::from(&back)
        .drop(true)
        .rename(db.clone(), format!("{db}_r"))
        .into(&keel)
        .await
        .unwrap();
    assert_eq!(count(&client, &format!("{db}_r"), "items").await, 500);

    // An interrupted upload (no manifest) is not a backup.
    upload(&dir, store.as_ref(), "backups/b2").await.unwrap();
    store
        .delete(&ObjectPath::from("backups/b2/manifest.json"))
        .await
        .unwrap();
    let error = download(store.as_ref(), "backups/b2", &scratch("b2"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("incomplete"), "{error}");

    // A damaged object fails verification and nothing is left.
    upload(&dir, store.as_ref(), "backups/b3").await.unwrap();
    let items = ObjectPath::from(format!("backups/b3/{db}/items.bson.gz"));
    store
        .put(&items, b"not gzip".to_vec().into())
        .await
        .unwrap();
    let out = scratch("b3");
    let error = download(store.as_ref(), "backups/b3", &out)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not intact"), "{error}");
    assert!(!out.exists());
    keel.shutdown().await;
}
