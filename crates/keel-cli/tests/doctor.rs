//! Runs `keel doctor` as a user would, against a keel-testkit server, a refused port, a bad
//! connection string and a host that does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clean_env;

use std::process::Output;

use clean_env::{exited, keel, keel_command, succeeded, text};

use keel_testkit::TestServer;

const SECRET: &str = "S3cretPw";

/// Runs `keel` off the async runtime, so the in-process test server keeps answering.
async fn keel_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keel(&args)
    })
    .await
    .unwrap()
}

/// Runs `keel doctor --uri <uri> <more…>` off the async runtime.
async fn doctor(uri: String, more: &[&str]) -> Output {
    let mut args = vec!["doctor".to_owned(), "--uri".to_owned(), uri];
    args.extend(more.iter().map(|arg| (*arg).to_owned()));
    keel_async(args).await
}

/// The line of `step` in the doctor's output.
fn step_line<'a>(stdout: &'a str, step: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| !line.starts_with(' ') && line.split_whitespace().nth(1) == Some(step))
        .unwrap_or_else(|| panic!("no {step} line in:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_server_passes_every_step() {
    let server = TestServer::start().await.unwrap();
    let out = doctor(server.uri(), &["--profile", "development"]).await;
    let stdout = succeeded(&out);
    for step in [
        "uri",
        "dns",
        "tcp",
        "tls",
        "handshake",
        "auth",
        "ping",
        "topology",
        "pool",
    ] {
        assert!(
            step_line(&stdout, step).starts_with('✓'),
            "{step}:\n{stdout}"
        );
    }
    assert!(
        step_line(&stdout, "handshake").contains("a standalone server"),
        "{stdout}"
    );
    assert!(step_line(&stdout, "ping").contains("5 pings"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("The connection works: every check passed."),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_profile_on_a_local_server_is_a_warning_not_a_failure() {
    let server = TestServer::start().await.unwrap();
    let out = doctor(server.uri(), &[]).await;
    let (stdout, _) = exited(&out, 0);
    let pool = step_line(&stdout, "pool");
    assert!(
        pool.starts_with('!') && pool.contains("production profile"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: for local development use --profile development"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("with 1 warning above."),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_replica_set_name_is_caught_at_the_handshake() {
    let server = TestServer::start().await.unwrap();
    let uri = format!("{}?replicaSet=rs1", server.uri());
    let out = doctor(uri, &[]).await;
    let (stdout, _) = exited(&out, 1);
    let handshake = step_line(&stdout, "handshake");
    assert!(
        handshake.starts_with('✗')
            && handshake.contains("asks for replicaSet=rs1")
            && handshake.contains("standalone"),
        "{stdout}"
    );
    assert!(step_line(&stdout, "topology").contains("not checked: the handshake step failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_against_a_plain_server_says_the_server_does_not_use_tls() {
    let server = TestServer::start().await.unwrap();
    let uri = format!("{}?tls=true", server.uri());
    let out = doctor(uri, &["--timeout", "1s"]).await;
    let (stdout, _) = exited(&out, 1);
    let tls = step_line(&stdout, "tls");
    assert!(
        tls.starts_with('✗') && tls.contains("does not use TLS"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: remove tls=true"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_never_printed_even_when_authentication_fails() {
    let server = TestServer::start().await.unwrap();
    let uri = server
        .uri()
        .replace("mongodb://", &format!("mongodb://app:{SECRET}@"));
    let out = doctor(uri, &[]).await;
    // The test server requires no authentication and has no user, so it refuses the
    // credentials, as mongod without access control does.
    let (stdout, stderr) = exited(&out, 1);
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains("app:"),
        "the user name is hidden too:\n{stdout}"
    );
    assert!(
        stdout.contains("mongodb://<redacted>@127.0.0.1:"),
        "{stdout}"
    );
    assert!(step_line(&stdout, "auth").starts_with('✗'), "{stdout}");
    assert!(step_line(&stdout, "handshake").starts_with('✓'), "{stdout}");
}

#[test]
fn a_refused_port_fails_at_tcp_in_plain_words() {
    let out = keel(&["doctor", "--uri", "mongodb://127.0.0.1:1/"]);
    let (stdout, stderr) = exited(&out, 1);
    assert_eq!(
        step_line(&stdout, "tcp"),
        "✗ tcp        TCP connection to 127.0.0.1:1 refused: nothing is listening there — is \
         mongod running, and is the port right?"
    );
    assert!(step_line(&stdout, "dns").starts_with('✓'));
    for later in ["tls", "handshake", "auth", "ping", "topology"] {
        assert!(
            step_line(&stdout, later).ends_with("not checked: the tcp step failed"),
            "{later}:\n{stdout}"
        );
    }
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: the tcp step failed: TCP connection to 127.0.0.1:1 refused"),
        "{stderr}"
    );
}

#[test]
fn a_host_that_does_not_exist_fails_at_dns() {
    let out = keel(&["doctor", "--uri", "mongodb://no-such-host.invalid:27017/"]);
    let (stdout, _) = exited(&out, 1);
    let dns = step_line(&stdout, "dns");
    assert!(
        dns.starts_with("✗ dns        the name no-such-host.invalid does not resolve"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: check the spelling of no-such-host.invalid"),
        "{stdout}"
    );
    assert!(step_line(&stdout, "tcp").ends_with("not checked: the dns step failed"));
}

#[test]
fn a_malformed_uri_fails_at_the_first_step_without_leaking_the_password() {
    let out = keel(&["doctor", "--uri", &format!("mongodb//app:{SECRET}@host/")]);
    let (stdout, stderr) = exited(&out, 1);
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    assert!(step_line(&stdout, "uri").starts_with('✗'), "{stdout}");
    assert!(
        step_line(&stdout, "pool").contains("not checked"),
        "{stdout}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: the uri step failed: invalid configuration: uri"),
        "{stderr}"
    );
}

#[test]
fn keel_uri_is_used_when_no_uri_is_given() {
    let out = keel_command(&["doctor"], &[("KEEL_URI", "mongodb://127.0.0.1:1/")])
        .output()
        .unwrap();
    let (stdout, _) = exited(&out, 1);
    assert!(
        stdout.starts_with("keel doctor: mongodb://127.0.0.1:1/ (from KEEL_URI"),
        "{stdout}"
    );
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["doctor", "--help"],
        &["config", "--help"],
    ] {
        let out = keel(args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: keel"), "{args:?}");
    }
    let doctor = text(&keel(&["doctor", "--help"]).stdout);
    for flag in ["--uri", "--profile", "--preset", "--file", "--timeout"] {
        assert!(doctor.contains(flag), "{doctor}");
    }
    let demo = text(&keel(&["demo", "--help"]).stdout);
    for flag in [
        "--uri",
        "--duration",
        "--seed",
        "--rate",
        "--workers",
        "--keep",
    ] {
        assert!(demo.contains(flag), "{demo}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_with_the_ca_file_and_explained_without_it() {
    let identity = keel_testkit::TlsIdentity::self_signed().unwrap();
    let server = TestServer::builder().tls(identity).start().await.unwrap();

    // With the CA: the doctor's own handshake verifies the certificate, and the rest passes.
    let with_ca = server.uri();
    assert!(with_ca.contains("tlsCAFile="), "{with_ca}");
    let out = doctor(with_ca, &["--profile", "development"]).await;
    let (stdout, _) = exited(&out, 0);
    let tls = step_line(&stdout, "tls");
    assert!(
        tls.starts_with('✓') && tls.contains("certificate verified"),
        "{stdout}"
    );

    // Without it: a CA this machine does not trust, and the fix names tlsCAFile.
    let without_ca = format!("mongodb://{}/?tls=true", server.addr());
    let out = doctor(without_ca, &["--timeout", "2s"]).await;
    let (stdout, _) = exited(&out, 1);
    let tls = step_line(&stdout, "tls");
    assert!(
        tls.starts_with('✗') && tls.contains("does not trust"),
        "{stdout}"
    );
    assert!(stdout.contains("tlsCAFile=/path/to/ca.pem"), "{stdout}");

    // Without TLS at all: the server hangs up, and the doctor suggests tls=true.
    let plain = format!("mongodb://{}/", server.addr());
    let out = doctor(plain, &["--timeout", "2s"]).await;
    let (stdout, _) = exited(&out, 1);
    assert!(step_line(&stdout, "tls").starts_with('✓'), "{stdout}");
    let handshake = step_line(&stdout, "handshake");
    assert!(handshake.starts_with('✗'), "{stdout}");
    assert!(stdout.contains("add tls=true"), "{stdout}");
}

/// A server that requires the user `app`, password `SECRET`.
async fn server_with_a_user() -> TestServer {
    TestServer::builder()
        .auth("app", SECRET)
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_credentials_pass_the_auth_step_and_are_not_printed() {
    let server = server_with_a_user().await;
    let (stdout, stderr) = exited(
        &doctor(server.uri(), &["--profile", "development"]).await,
        0,
    );
    assert!(
        step_line(&stdout, "auth").starts_with("✓ auth       authenticated (user name hidden)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET) && !stdout.contains("app@"),
        "{stdout}{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_auth_step_without_printing_either_password() {
    let server = server_with_a_user().await;
    let wrong = "Wr0ngPassw0rd";
    let (stdout, stderr) = exited(&doctor(server.uri().replace(SECRET, wrong), &[]).await, 1);
    let auth = step_line(&stdout, "auth");
    assert!(
        auth.starts_with('✗') && auth.contains("rejected the user name or password"),
        "{stdout}"
    );
    for password in [SECRET, wrong] {
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "{stdout}{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_demands_credentials_is_reported_when_none_are_given() {
    let server = server_with_a_user().await;
    let (stdout, _) = exited(&doctor(server.uri_without_credentials(), &[]).await, 1);
    let auth = step_line(&stdout, "auth");
    assert!(
        auth.starts_with('✗')
            && auth.contains("requires authentication, and this connection has none"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: put the user and password in the connection string"),
        "{stdout}"
    );
}
