//! Offline notes: a small notes app that keeps writing while its server (an in-process
//! keel-testkit on 127.0.0.1) is stopped, and syncs when it returns, printing its status line.
//! `tests/offline_notes.rs` runs the same app and checks the server.
//!
//! ```sh
//! cargo run -p keel-sync --example offline_notes
//! ```

#[path = "offline_notes/notes.rs"]
mod notes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = keel_testkit::TestServer::start().await?;
    let dir = std::env::temp_dir().join(format!("keel-sync-offline-notes-{}", std::process::id()));
    // A directory left by an earlier run with the same pid would hold its notes.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let session = notes::run(&server, &dir.join("notes.keel-sync"), 5, |line| {
        println!("{line}");
    })
    .await?;
    println!(
        "{} notes written, every one acknowledged on disk and now on the server",
        session.notes.len()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
