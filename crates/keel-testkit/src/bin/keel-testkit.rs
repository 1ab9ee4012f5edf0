//! `keel-testkit`: runs the test server standalone, for tests in other languages or processes.
//!
//! ```text
//! keel-testkit [--bind 127.0.0.1:27017] [--data DIR]
//!              [--replica-set NAME [--members N] [--oplog-size N] [--election-timeout-ms MS]
//!               [--replication-lag MEMBER=MS]... [--periodic-noop-interval-ms MS]
//!               [--transaction-lifetime-limit-ms MS]]
//!              [--user U --password P]
//!              [--tls-cert FILE --tls-key FILE]
//! ```
//! Prints one line containing `listening on mongodb://…` once it accepts connections, then
//! serves until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use keel_testkit::TestServer;

const USAGE: &str =
    "usage: keel-testkit [--bind ADDR:PORT] [--data DIR] [--replica-set NAME [--members N]]

  --bind ADDR:PORT    address to listen on (default 127.0.0.1:27017; port 0 picks a free port);
                      replica-set member i listens on PORT+i (each on a free port with port 0)
  --data DIR          persist data in DIR so it survives restarts (default: memory only)
  --replica-set NAME  run as replica set NAME (hello reports setName, hosts, primary, ...)
  --members N         replica-set members, 1 to 50 (default 1); member 0 starts as primary
  --oplog-size N      changes kept for change streams (default 10000); resuming from before
                      them fails with ChangeStreamHistoryLost (286)
  --election-timeout-ms MS
                      how long secondaries wait for a silent primary before electing
                      another (default 10000, mongod's electionTimeoutMillis)
  --replication-lag MEMBER=MS
                      member MEMBER applies writes MS milliseconds late while a secondary
                      (stale secondary reads, w:majority waits); repeat for more members
  --periodic-noop-interval-ms MS
                      an idle primary writes a no-op oplog entry every MS milliseconds
                      (default 10000, mongod's periodicNoopIntervalSecs)
  --transaction-lifetime-limit-ms MS
                      open transactions are aborted after MS milliseconds (default 60000,
                      mongod's transactionLifetimeLimitSeconds)
  --user U            require SCRAM-SHA-256/SHA-1 authentication as user U (in admin)
  --password P        the user's password (never printed)
  --tls-cert FILE     require TLS with this PEM certificate chain (plaintext clients are
                      disconnected); clients connect with tls=true and a CA file
  --tls-key FILE      the certificate's PEM private key
  -h, --help          print this help";

/// Parsed command line.
#[derive(Debug, PartialEq)]
struct Args {
    bind: SocketAddr,
    data: Option<PathBuf>,
    replica_set: Option<String>,
    members: usize,
    oplog_size: Option<usize>,
    election_timeout_ms: Option<u64>,
    replication_lags: Vec<(usize, u64)>,
    noop_interval_ms: Option<u64>,
    txn_lifetime_ms: Option<u64>,
    user: Option<String>,
    password: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
// Parsed once at start-up: the size of the value does not matter.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Run(Args),
    Help,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 27017)),
        data: None,
        replica_set: None,
        members: 1,
        oplog_size: None,
        election_timeout_ms: None,
        replication_lags: Vec::new(),
        noop_interval_ms: None,
        txn_lifetime_ms: None,
        user: None,
        password: None,
        tls_cert: None,
        tls_key: None,
    };
    let mut members_given = false;
    while let Some(flag) = argv.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--bind" => {
                let v = value("an address like 127.0.0.1:27017")?;
                args.bind = v.parse().map_err(|_| {
                    format!("--bind: '{v}' is not an IP address with a port (e.g. 127.0.0.1:27017)")
                })?;
            }
            "--data" => {
                let v = value("a directory")?;
                if v.is_empty() {
                    return Err("--data: the directory must not be empty".into());
                }
                args.data = Some(PathBuf::from(v));
            }
            "--replica-set" => {
                let v = value("a replica set name")?;
                if v.is_empty() {
                    return Err("--replica-set: the name must not be empty".into());
                }
                args.replica_set = Some(v);
            }
            "--members" => {
                let v = value("a number of members")?;
                args.members = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=50).contains(n))
                    .ok_or_else(|| format!("--members: '{v}' is not a number from 1 to 50"))?;
                members_given = true;
            }
            "--oplog-size" => {
                let v = value("a number of changes")?;
                args.oplog_size = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--oplog-size: '{v}' is not a positive number of changes")
                })?);
            }
            "--election-timeout-ms" => {
                args.election_timeout_ms = Some(positive_ms(&name, &value("milliseconds")?)?);
            }
            "--periodic-noop-interval-ms" => {
                args.noop_interval_ms = Some(positive_ms(&name, &value("milliseconds")?)?);
            }
            "--transaction-lifetime-limit-ms" => {
                args.txn_lifetime_ms = Some(positive_ms(&name, &value("milliseconds")?)?);
            }
            "--replication-lag" => {
                let v = value("MEMBER=MS")?;
                let parsed = v.split_once('=').and_then(|(m, ms)| {
                    Some((
                        m.trim().parse::<usize>().ok()?,
                        ms.trim().parse::<u64>().ok()?,
                    ))
                });
                let (member, ms) = parsed.ok_or_else(|| {
                    format!(
                        "--replication-lag: '{v}' is not MEMBER=MS (a member index and a number \
                         of milliseconds, e.g. 1=500)"
                    )
                })?;
                args.replication_lags.push((member, ms));
            }
            "--user" => {
                let v = value("a user name")?;
                if v.is_empty() {
                    return Err("--user: the name must not be empty".into());
                }
                args.user = Some(v);
            }
            "--password" => args.password = Some(value("a password")?),
            "--tls-cert" => args.tls_cert = Some(PathBuf::from(value("a PEM file")?)),
            "--tls-key" => args.tls_key = Some(PathBuf::from(value("a PEM file")?)),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if members_given && args.replica_set.is_none() {
        return Err("--members needs --replica-set NAME".into());
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    if args.user.is_some() != args.password.is_some() {
        return Err("--user and --password go together".into());
    }
    if args.oplog_size.is_some() && args.replica_set.is_none() {
        return Err(
            "--oplog-size needs --replica-set NAME (only replica sets have an oplog)".into(),
        );
    }
    if !args.replication_lags.is_empty() && args.replica_set.is_none() {
        return Err("--replication-lag needs --replica-set NAME".into());
    }
    if let Some((member, _)) = args
        .replication_lags
        .iter()
        .find(|(m, _)| *m >= args.members)
    {
        return Err(format!(
            "--replication-lag: there is no member {member} (members 0 to {})",
            args.members - 1
        ));
    }
    for (given, flag) in [
        (args.election_timeout_ms, "--election-timeout-ms"),
        (args.noop_interval_ms, "--periodic-noop-interval-ms"),
        (args.txn_lifetime_ms, "--transaction-lifetime-limit-ms"),
    ] {
        if given.is_some() && args.replica_set.is_none() {
            return Err(format!("{flag} needs --replica-set NAME"));
        }
    }
    Ok(Parsed::Run(args))
}

/// A flag's positive number of milliseconds.
fn positive_ms(flag: &str, v: &str) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag}: '{v}' is not a positive number of milliseconds"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("keel-testkit: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = TestServer::builder().bind(args.bind);
    if let Some(dir) = &args.data {
        builder = builder.data_dir(dir);
    }
    if let Some(name) = &args.replica_set {
        builder = builder.replica_set(name, args.members);
    }
    if let Some(n) = args.oplog_size {
        builder = builder.oplog_size(n);
    }
    for (member, ms) in &args.replication_lags {
        builder = builder.replication_lag(*member, std::time::Duration::from_millis(*ms));
    }
    if let Some(ms) = args.election_timeout_ms {
        builder = builder.election_timeout(std::time::Duration::from_millis(ms));
    }
    if let Some(ms) = args.noop_interval_ms {
        builder = builder.periodic_noop_interval(std::time::Duration::from_millis(ms));
    }
    if let Some(ms) = args.txn_lifetime_ms {
        builder = builder.transaction_lifetime_limit(std::time::Duration::from_millis(ms));
    }
    if let (Some(user), Some(password)) = (&args.user, &args.password) {
        builder = builder.auth(user, password);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match keel_testkit::TlsIdentity::from_pem_files(cert, key) {
            Ok(identity) => builder = builder.tls(identity),
            Err(e) => {
                eprintln!("keel-testkit: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let server = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keel-testkit: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The URI is printed without credentials: the password never reaches a log.
    let storage = match &args.data {
        Some(dir) => format!("data in {}", dir.display()),
        None => "in memory".to_owned(),
    };
    let auth = match &args.user {
        Some(user) => format!(", SCRAM user '{user}'"),
        None => String::new(),
    };
    println!(
        "keel-testkit listening on {} ({storage}{auth})",
        server.uri_without_credentials()
    );
    // Serve until the process is killed; the journal is written before each reply, so a kill
    // loses nothing that was acknowledged.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags() {
        assert_eq!(
            p(&["--bind", "127.0.0.1:0", "--data=/tmp/x"]).unwrap(),
            Parsed::Run(Args {
                bind: "127.0.0.1:0".parse().unwrap(),
                data: Some("/tmp/x".into()),
                replica_set: None,
                members: 1,
                oplog_size: None,
                election_timeout_ms: None,
                replication_lags: Vec::new(),
                noop_interval_ms: None,
                txn_lifetime_ms: None,
                user: None,
                password: None,
                tls_cert: None,
                tls_key: None,
            })
        );
        assert_eq!(
            p(&[
                "--replica-set",
                "rs0",
                "--members=3",
                "--oplog-size",
                "5",
                "--election-timeout-ms",
                "250",
                "--replication-lag",
                "1=500",
                "--periodic-noop-interval-ms=100",
                "--transaction-lifetime-limit-ms",
                "2000"
            ])
            .unwrap(),
            Parsed::Run(Args {
                bind: "127.0.0.1:27017".parse().unwrap(),
                data: None,
                replica_set: Some("rs0".into()),
                members: 3,
                oplog_size: Some(5),
                election_timeout_ms: Some(250),
                replication_lags: vec![(1, 500)],
                noop_interval_ms: Some(100),
                txn_lifetime_ms: Some(2000),
                user: None,
                password: None,
                tls_cert: None,
                tls_key: None,
            })
        );
        assert_eq!(p(&["-h"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert!(p(&["--bind"]).unwrap_err().contains("needs"));
        assert!(
            p(&["--bind", "localhost"])
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(p(&["--frob"]).unwrap_err().contains("unknown argument"));
        assert!(
            p(&["--data", ""])
                .unwrap_err()
                .contains("must not be empty")
        );
        assert!(p(&["--members", "0"]).unwrap_err().contains("1 to 50"));
        assert!(
            p(&["--members", "3"])
                .unwrap_err()
                .contains("needs --replica-set")
        );
        assert!(p(&["--oplog-size", "0"]).unwrap_err().contains("positive"));
        assert!(
            p(&["--replica-set", "r", "--election-timeout-ms", "0"])
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            p(&["--replica-set", "r", "--replication-lag", "1:5"])
                .unwrap_err()
                .contains("MEMBER=MS")
        );
        assert!(
            p(&["--replica-set", "r", "--replication-lag", "1=5"])
                .unwrap_err()
                .contains("no member 1")
        );
        assert!(
            p(&["--election-timeout-ms", "9"])
                .unwrap_err()
                .contains("--replica-set")
        );
        assert!(
            p(&["--transaction-lifetime-limit-ms", "9"])
                .unwrap_err()
                .contains("--transaction-lifetime-limit-ms needs --replica-set")
        );
        assert!(
            p(&["--replica-set", "r", "--periodic-noop-interval-ms", "x"])
                .unwrap_err()
                .contains("not a positive number of milliseconds")
        );
        assert!(p(&["--user", "u"]).unwrap_err().contains("go together"));
        assert!(
            p(&["--tls-cert", "c.pem"])
                .unwrap_err()
                .contains("go together")
        );
        assert!(p(&["--password", "p"]).unwrap_err().contains("go together"));
        assert!(
            p(&["--oplog-size", "9"])
                .unwrap_err()
                .contains("needs --replica-set")
        );
        assert!(
            p(&["--replica-set="])
                .unwrap_err()
                .contains("must not be empty")
        );
    }
}
