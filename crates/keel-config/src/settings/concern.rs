//! Read and write concern settings.

use std::fmt;

/// The read concern level Keel asks the driver to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadConcernSetting {
    /// Leave it to the connection string, else the server (which uses `local`).
    ServerDefault,
    /// `local`: the node's latest data, which a failover may roll back.
    Local,
    /// `majority`: only data a majority acknowledged, which survives a failover.
    Majority,
    /// `available`: like local, for sharded clusters that tolerate orphans.
    Available,
    /// `linearizable`: majority, and reflects all writes acknowledged before the read.
    Linearizable,
    /// `snapshot`: for multi-document transactions.
    Snapshot,
}

impl ReadConcernSetting {
    pub(crate) const NAMES: &'static str =
        "server-default, local, majority, available, linearizable, snapshot";

    /// The name used in files and environment variables.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReadConcernSetting::ServerDefault => "server-default",
            ReadConcernSetting::Local => "local",
            ReadConcernSetting::Majority => "majority",
            ReadConcernSetting::Available => "available",
            ReadConcernSetting::Linearizable => "linearizable",
            ReadConcernSetting::Snapshot => "snapshot",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "server-default" => ReadConcernSetting::ServerDefault,
            "local" => ReadConcernSetting::Local,
            "majority" => ReadConcernSetting::Majority,
            "available" => ReadConcernSetting::Available,
            "linearizable" => ReadConcernSetting::Linearizable,
            "snapshot" => ReadConcernSetting::Snapshot,
            _ => return None,
        })
    }

    pub(crate) fn to_driver(&self) -> Option<mongodb::options::ReadConcern> {
        use mongodb::options::ReadConcern;
        Some(match self {
            ReadConcernSetting::ServerDefault => return None,
            ReadConcernSetting::Local => ReadConcern::local(),
            ReadConcernSetting::Majority => ReadConcern::majority(),
            ReadConcernSetting::Available => ReadConcern::available(),
            ReadConcernSetting::Linearizable => ReadConcern::linearizable(),
            ReadConcernSetting::Snapshot => ReadConcern::snapshot(),
        })
    }
}

impl fmt::Display for ReadConcernSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The write concern Keel asks the driver to use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteConcernSettings {
    /// Which acknowledgement a write waits for.
    pub w: WriteAck,
    /// Wait for the on-disk journal; `None` leaves it to the connection string or server.
    pub journal: Option<bool>,
}

/// The `w` of a write concern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteAck {
    /// Leave it to the connection string, else the server.
    ServerDefault,
    /// `majority`: the write survives a failover.
    Majority,
    /// This many members (0 = unacknowledged).
    Nodes(u32),
    /// A replica-set tag set name.
    Tag(String),
}

impl WriteAck {
    pub(crate) fn parse(text: &str) -> Self {
        let text = text.trim();
        match text {
            "server-default" => WriteAck::ServerDefault,
            "majority" => WriteAck::Majority,
            _ => match text.parse() {
                Ok(nodes) => WriteAck::Nodes(nodes),
                Err(_) => WriteAck::Tag(text.to_owned()),
            },
        }
    }

    pub(crate) fn to_driver(&self) -> Option<mongodb::options::Acknowledgment> {
        use mongodb::options::Acknowledgment;
        Some(match self {
            WriteAck::ServerDefault => return None,
            WriteAck::Majority => Acknowledgment::Majority,
            WriteAck::Nodes(nodes) => Acknowledgment::Nodes(*nodes),
            WriteAck::Tag(tag) => Acknowledgment::Custom(tag.clone()),
        })
    }
}

impl fmt::Display for WriteAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteAck::ServerDefault => f.write_str("server-default"),
            WriteAck::Majority => f.write_str("majority"),
            WriteAck::Nodes(nodes) => write!(f, "{nodes}"),
            WriteAck::Tag(tag) => f.write_str(tag),
        }
    }
}
