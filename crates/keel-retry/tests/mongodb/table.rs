//! Every `ErrorClass` × `OperationKind` cell of the retry-safety table (design notes §4), with
//! and without proof that nothing was applied, run through the layer.

use std::collections::BTreeSet;

use keel_core::{DriverFailure, Error, ErrorClass, ErrorFacts, OperationKind, codes, labels};

use crate::support::{KINDS, Script, config, op, retrying, send};

/// One failure of each class, as the classifier would build it from the driver.
fn facts_for(class: ErrorClass) -> ErrorFacts {
    let command = |code| ErrorFacts::new(DriverFailure::Command).with_code(code);
    match class {
        ErrorClass::Network => ErrorFacts::new(DriverFailure::Io),
        ErrorClass::StateChange => command(codes::INTERRUPTED_AT_SHUTDOWN),
        ErrorClass::PoolCleared => ErrorFacts::new(DriverFailure::PoolCleared),
        ErrorClass::ServerSelection => ErrorFacts::new(DriverFailure::ServerSelection),
        ErrorClass::Overloaded => {
            command(codes::BAD_VALUE).with_label(labels::SYSTEM_OVERLOADED_ERROR)
        }
        ErrorClass::Timeout => command(codes::MAX_TIME_MS_EXPIRED),
        ErrorClass::Auth => ErrorFacts::new(DriverFailure::Authentication),
        ErrorClass::Config => ErrorFacts::new(DriverFailure::InvalidTls),
        ErrorClass::InvalidInput => command(codes::DUPLICATE_KEY),
        ErrorClass::WriteConcern => {
            ErrorFacts::new(DriverFailure::WriteConcernError).with_code(codes::WRITE_CONCERN_FAILED)
        }
        ErrorClass::Cursor => command(codes::CURSOR_NOT_FOUND),
        ErrorClass::ChangeStream => command(codes::CHANGE_STREAM_HISTORY_LOST),
        ErrorClass::Unavailable => ErrorFacts::new(DriverFailure::ClientShutdown),
        ErrorClass::Unknown => ErrorFacts::new(DriverFailure::Other),
        other => panic!("class {other} is new: add it to the retry-safety table test"),
    }
}

/// Every error of `class` this test uses: the driver-shaped one, the same with the
/// `NoWritesPerformed` label (proof nothing applied), and Keel's own errors of that class.
fn samples(class: ErrorClass) -> Vec<Error> {
    let facts = facts_for(class);
    let mut samples = vec![
        Error::from_facts(&facts, "driver failure"),
        Error::from_facts(
            &facts.with_label(labels::NO_WRITES_PERFORMED),
            "nothing written",
        ),
    ];
    match class {
        ErrorClass::Overloaded => samples.push(Error::overloaded("checkout wait limit", None)),
        ErrorClass::Timeout => {
            samples.push(Error::attempt_timeout(std::time::Duration::from_secs(1)))
        }
        ErrorClass::Unavailable => {
            samples.push(Error::circuit_open(std::time::Duration::from_secs(5)));
            samples.push(Error::shutting_down());
        }
        ErrorClass::Config => samples.push(Error::config("bad option")),
        _ => {}
    }
    samples
}

/// Design notes §4, written out independently of keel-core's implementation.
fn may_retry(class: ErrorClass, kind: OperationKind, proves_not_applied: bool) -> bool {
    let transient = matches!(
        class,
        ErrorClass::Network
            | ErrorClass::StateChange
            | ErrorClass::PoolCleared
            | ErrorClass::ServerSelection
            | ErrorClass::Overloaded
            | ErrorClass::Timeout
    );
    let safe_to_repeat = match kind {
        OperationKind::Read => true,
        OperationKind::Write { idempotent } | OperationKind::Command { idempotent } => {
            idempotent || proves_not_applied
        }
    };
    transient && safe_to_repeat
}

/// These classes prove nothing was applied by construction (refused before sending), so their
/// "may have applied" cells cannot occur.
const ALWAYS_PROVES: [ErrorClass; 5] = [
    ErrorClass::PoolCleared,
    ErrorClass::ServerSelection,
    ErrorClass::Auth,
    ErrorClass::Config,
    ErrorClass::Unavailable,
];

#[tokio::test(start_paused = true)]
async fn every_class_and_kind_cell_follows_the_design_notes() {
    let mut cells = BTreeSet::new();
    for class in ErrorClass::ALL {
        let samples = samples(class);
        let proofs: BTreeSet<bool> = samples.iter().map(Error::proves_not_applied).collect();
        let expected_proofs = if ALWAYS_PROVES.contains(&class) {
            BTreeSet::from([true])
        } else {
            BTreeSet::from([false, true])
        };
        assert_eq!(
            proofs, expected_proofs,
            "{class}: both proof columns covered"
        );
        for error in samples {
            assert_eq!(error.class(), class, "sample {error:?}");
            for kind in KINDS {
                let proves = error.proves_not_applied();
                let retry = may_retry(class, kind, proves);
                let script = Script::new([Err(error.clone()), Ok(1)]);
                let mut service = retrying(config(2), &script);
                let result = send(&mut service, op("test.cell", kind)).await;
                let cell = format!("{class} × {} (proves not applied: {proves})", kind.as_str());
                if retry {
                    assert_eq!(result.unwrap(), 1, "{cell}: must be retried");
                    assert_eq!(script.calls(), 2, "{cell}");
                } else {
                    let err = result.expect_err(&cell);
                    assert_eq!(script.calls(), 1, "{cell}: must not be retried");
                    assert_eq!(err.class(), class, "{cell}: class kept");
                    assert_eq!(err.attempts(), Some(1), "{cell}");
                    assert_eq!(err.stopped_because(), Some("not retryable"), "{cell}");
                }
                cells.insert((class.as_str(), kind.as_str(), proves));
            }
        }
    }
    let possible = ErrorClass::ALL.len() * KINDS.len() * 2 - ALWAYS_PROVES.len() * KINDS.len();
    assert_eq!(cells.len(), possible, "every possible cell was exercised");
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_key_is_never_retried_even_for_an_idempotent_insert() {
    let duplicate = Error::from_facts(
        &ErrorFacts::new(DriverFailure::WriteError).with_code(codes::DUPLICATE_KEY),
        "E11000 duplicate key",
    );
    assert!(duplicate.is_duplicate_key());
    let script = Script::new([Err(duplicate), Ok(1)]);
    let mut service = retrying(config(3), &script);
    let err = send(
        &mut service,
        op("users.insert", OperationKind::Write { idempotent: true }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert_eq!(script.calls(), 1);
}
