//! Authentication: one SCRAM user (in `admin`), the `saslStart`/`saslContinue` commands,
//! speculative authentication and `saslSupportedMechs` in `hello`, and the gate that answers
//! `Unauthorized` (13) to every other command on an unauthenticated connection.
//!
//! Reference: the MongoDB authentication specification. Passwords are never stored (only
//! SCRAM's derived keys) and never printed: `Debug` output is redacted.

mod scram;

use std::sync::OnceLock;

use bson::{Binary, Bson, Document, doc, spec::BinarySubtype};

use crate::commands::{CommandError, codes};
use scram::{Conversation, Mechanism, StoredKeys, client_first_user};

/// The database users are defined in (drivers' default `authSource` for SCRAM).
const USER_DB: &str = "admin";

/// The user the server accepts.
pub(crate) struct Users {
    user: String,
    /// Kept only until both mechanisms' keys are derived (PBKDF2 is slow in debug builds, so
    /// each mechanism is derived on first use).
    password: String,
    iterations: Option<u32>,
    sha1: OnceLock<StoredKeys>,
    sha256: OnceLock<StoredKeys>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// `user` with SCRAM-SHA-1 and SCRAM-SHA-256 credentials, as `createUser` makes them.
    pub(crate) fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            iterations: None,
            sha1: OnceLock::new(),
            sha256: OnceLock::new(),
        }
    }

    fn keys(&self, db: &str, user: &str, mechanism: Mechanism) -> Option<&StoredKeys> {
        if db != USER_DB || user != self.user {
            return None;
        }
        let cell = match mechanism {
            Mechanism::Sha1 => &self.sha1,
            Mechanism::Sha256 => &self.sha256,
        };
        Some(cell.get_or_init(|| {
            StoredKeys::derive(mechanism, &self.user, &self.password, self.iterations)
        }))
    }
}

/// One connection's authentication state.
#[derive(Debug, Default)]
pub(crate) struct ConnAuth {
    authenticated: bool,
    /// A SCRAM conversation in progress: after the server-first message (`proof` pending), or
    /// after the server-final message when the client did not skip the empty exchange.
    conversation: Option<Step>,
}

#[derive(Debug)]
enum Step {
    AwaitingProof {
        conversation: Box<Conversation>,
        skip_empty_exchange: bool,
    },
    AwaitingEmpty,
}

impl ConnAuth {
    pub(crate) fn is_authenticated(&self) -> bool {
        self.authenticated
    }
}

/// Commands mongod runs before authentication (its `requiresAuth() == false`).
pub(crate) fn allowed_unauthenticated(command: &str) -> bool {
    matches!(
        command,
        "hello"
            | "isMaster"
            | "ismaster"
            | "saslStart"
            | "saslContinue"
            | "ping"
            | "buildInfo"
            | "buildinfo"
            | "endSessions"
            | "logout"
            | "connectionStatus"
    )
}

/// `connectionStatus`: who this connection is authenticated as. Without `users` (a server that
/// does not require authentication) nobody is, as on mongod without access control. The one
/// user may run everything, so it reports mongod's all-powerful built-in role, `root`.
pub(crate) fn connection_status(users: Option<&Users>, state: &ConnAuth) -> Document {
    let (users, roles) = match users {
        Some(users) if state.is_authenticated() => (
            vec![Bson::Document(
                doc! {"user": users.user.as_str(), "db": USER_DB},
            )],
            vec![Bson::Document(doc! {"role": "root", "db": USER_DB})],
        ),
        _ => (Vec::new(), Vec::new()),
    };
    doc! {
        "authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": roles},
        "ok": 1.0,
    }
}

/// `Unauthorized` for a command on an unauthenticated connection.
pub(crate) fn unauthorized(command: &str) -> CommandError {
    CommandError::new(
        codes::UNAUTHORIZED,
        format!("Command {command} requires authentication"),
    )
}

/// `AuthenticationFailed`, with no more detail than mongod gives.
pub(crate) fn failed() -> CommandError {
    // mongod says no more than this, whatever went wrong (unknown user, wrong password).
    CommandError::new(codes::AUTHENTICATION_FAILED, "Authentication failed.")
}

fn payload(cmd: &Document) -> Result<String, CommandError> {
    let bytes = match cmd.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        Some(Bson::String(s)) => s.as_bytes().to_vec(),
        _ => {
            return Err(CommandError::failed_to_parse(
                "BSON field 'payload' is missing but a required field",
            ));
        }
    };
    String::from_utf8(bytes).map_err(|_| failed())
}

fn binary(s: &str) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: s.as_bytes().to_vec(),
    })
}

/// `saslStart` (also the body of `speculativeAuthenticate`), against database `db`.
pub(crate) fn sasl_start(
    users: &Users,
    state: &mut ConnAuth,
    db: &str,
    cmd: &Document,
) -> Result<Document, CommandError> {
    state.conversation = None;
    let name = cmd.get_str("mechanism").unwrap_or_default();
    let Some(mechanism) = Mechanism::parse(name) else {
        return Err(CommandError::new(
            codes::MECHANISM_UNAVAILABLE,
            format!("Received authentication for mechanism {name} which is not enabled"),
        ));
    };
    let message = payload(cmd)?;
    let user = client_first_user(&message).map_err(|_| failed())?;
    let keys = users.keys(db, &user, mechanism).ok_or_else(failed)?;
    let (conversation, server_first) = Conversation::start(keys, &message).map_err(|_| failed())?;
    let skip_empty_exchange = cmd
        .get_document("options")
        .ok()
        .and_then(|o| o.get_bool("skipEmptyExchange").ok())
        .unwrap_or(false);
    state.conversation = Some(Step::AwaitingProof {
        conversation: Box::new(conversation),
        skip_empty_exchange,
    });
    Ok(doc! {"conversationId": 1, "done": false, "payload": binary(&server_first), "ok": 1.0})
}

/// `saslContinue`.
pub(crate) fn sasl_continue(
    state: &mut ConnAuth,
    cmd: &Document,
) -> Result<Document, CommandError> {
    let message = payload(cmd)?;
    match state.conversation.take() {
        Some(Step::AwaitingProof {
            conversation,
            skip_empty_exchange,
        }) => {
            let server_final = conversation.finish(&message).map_err(|_| failed())?;
            if skip_empty_exchange {
                state.authenticated = true;
            } else {
                state.conversation = Some(Step::AwaitingEmpty);
            }
            Ok(doc! {
                "conversationId": 1,
                "done": skip_empty_exchange,
                "payload": binary(&server_final),
                "ok": 1.0,
            })
        }
        Some(Step::AwaitingEmpty) => {
            state.authenticated = true;
            Ok(doc! {"conversationId": 1, "done": true, "payload": binary(""), "ok": 1.0})
        }
        None => Err(CommandError::new(
            codes::PROTOCOL_ERROR,
            "No SASL session state found",
        )),
    }
}

/// Adds `saslSupportedMechs` and the `speculativeAuthenticate` reply to a `hello` reply.
pub(crate) fn annotate_hello(
    users: &Users,
    state: &mut ConnAuth,
    hello: &Document,
    reply: &mut Document,
) {
    if let Ok(name) = hello.get_str("saslSupportedMechs")
        && let Some((db, user)) = name.split_once('.')
        && users.keys(db, user, Mechanism::Sha256).is_some()
    {
        reply.insert(
            "saslSupportedMechs",
            vec![Mechanism::Sha1.name(), Mechanism::Sha256.name()],
        );
    }
    if let Ok(spec) = hello.get_document("speculativeAuthenticate") {
        let db = spec.get_str("db").unwrap_or(USER_DB).to_owned();
        // A failed speculative attempt is simply not answered: the driver then authenticates
        // with saslStart and gets the real error.
        if let Ok(mut first) = sasl_start(users, state, &db, spec) {
            first.remove("ok");
            reply.insert("speculativeAuthenticate", first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Document) -> String {
        match reply.get("payload") {
            Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).unwrap(),
            other => panic!("no payload: {other:?}"),
        }
    }

    fn start(users: &Users, state: &mut ConnAuth, mech: &str, skip: bool) -> Document {
        let cmd = doc! {
            "saslStart": 1,
            "mechanism": mech,
            "payload": binary("n,,n=u,r=clientnonce"),
            "options": {"skipEmptyExchange": skip},
        };
        sasl_start(users, state, "admin", &cmd).unwrap()
    }

    /// Fewer PBKDF2 rounds than mongod's defaults keep debug-build unit tests fast.
    fn users(user: &str, password: &str) -> Users {
        let mut users = Users::new(user, password);
        users.iterations = Some(64);
        users
    }

    #[test]
    fn both_mechanisms_with_and_without_the_empty_exchange() {
        let users = users("u", "p@ss");
        for (mech, m) in [
            ("SCRAM-SHA-1", Mechanism::Sha1),
            ("SCRAM-SHA-256", Mechanism::Sha256),
        ] {
            for skip in [true, false] {
                let mut state = ConnAuth::default();
                let first = start(&users, &mut state, mech, skip);
                let proof = scram::client_final(m, "u", "p@ss", "n=u,r=clientnonce", &text(&first));
                let done = sasl_continue(&mut state, &doc! {"payload": binary(&proof)}).unwrap();
                assert!(text(&done).starts_with("v="));
                assert_eq!(done.get_bool("done").unwrap(), skip);
                assert_eq!(state.is_authenticated(), skip);
                if !skip {
                    let last = sasl_continue(&mut state, &doc! {"payload": binary("")}).unwrap();
                    assert!(last.get_bool("done").unwrap());
                    assert!(state.is_authenticated());
                }
            }
        }
    }

    #[test]
    fn connection_status_names_the_user_only_once_authenticated() {
        let nobody = doc! {"authenticatedUsers": [], "authenticatedUserRoles": []};
        let users = users("u", "p");
        let mut state = ConnAuth::default();
        let status = |users: Option<&Users>, state: &ConnAuth| {
            connection_status(users, state)
                .get_document("authInfo")
                .unwrap()
                .clone()
        };
        assert_eq!(status(None, &state), nobody);
        assert_eq!(status(Some(&users), &state), nobody);
        let first = start(&users, &mut state, "SCRAM-SHA-256", true);
        let proof = scram::client_final(
            Mechanism::Sha256,
            "u",
            "p",
            "n=u,r=clientnonce",
            &text(&first),
        );
        sasl_continue(&mut state, &doc! {"payload": binary(&proof)}).unwrap();
        assert_eq!(
            status(Some(&users), &state),
            doc! {
                "authenticatedUsers": [{"user": "u", "db": "admin"}],
                "authenticatedUserRoles": [{"role": "root", "db": "admin"}],
            }
        );
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_mechanism_fail() {
        let users = users("u", "right");
        let mut state = ConnAuth::default();
        let first = start(&users, &mut state, "SCRAM-SHA-256", true);
        let proof = scram::client_final(
            Mechanism::Sha256,
            "u",
            "wrong",
            "n=u,r=clientnonce",
            &text(&first),
        );
        let e = sasl_continue(&mut state, &doc! {"payload": binary(&proof)}).unwrap_err();
        assert_eq!((e.code, e.errmsg.as_str()), (18, "Authentication failed."));
        assert!(!state.is_authenticated());
        let other = doc! {"mechanism": "SCRAM-SHA-256", "payload": binary("n,,n=eve,r=x")};
        assert_eq!(
            sasl_start(&users, &mut state, "admin", &other)
                .unwrap_err()
                .code,
            18
        );
        let ok_user = doc! {"mechanism": "SCRAM-SHA-256", "payload": binary("n,,n=u,r=x")};
        assert_eq!(
            sasl_start(&users, &mut state, "app", &ok_user)
                .unwrap_err()
                .code,
            18,
            "user lives in admin"
        );
        let plain = doc! {"mechanism": "PLAIN", "payload": binary("x")};
        assert_eq!(
            sasl_start(&users, &mut state, "admin", &plain)
                .unwrap_err()
                .code,
            334
        );
        assert_eq!(
            sasl_continue(&mut state, &doc! {"payload": binary("x")})
                .unwrap_err()
                .code,
            17
        );
        assert!(!format!("{users:?}").contains("right"));
    }
}
