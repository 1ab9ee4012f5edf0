//! `OperationName`: an operation's name, cheap to clone because every layer of a stack copies it
//! (retry clones the request per attempt, metrics use it as a label, errors quote it).

use std::{borrow::Cow, fmt, ops::Deref, sync::Arc};

/// The name of an [`Operation`](crate::Operation) (`"app.users.find_one"`): a `&'static str`
/// or a shared string, so a clone never allocates.
///
/// It is a log field and a metric label, so it must come from a small fixed set in code, never
/// from user data. Build a name once (say, per collection and method) and clone it per call.
///
/// ```
/// use std::sync::Arc;
/// use keel_core::OperationName;
///
/// let fixed = OperationName::from("admin.ping");
/// let built: OperationName = format!("{}.{}.find_one", "app", "users").into();
/// let copy = built.clone(); // shares the string
/// assert_eq!(copy.as_str(), "app.users.find_one");
/// assert_eq!(fixed, OperationName::Shared(Arc::from("admin.ping")));
/// ```
#[derive(Clone)]
pub enum OperationName {
    /// A name known at compile time.
    Static(&'static str),
    /// A name built at run time, shared by every clone.
    Shared(Arc<str>),
}

impl OperationName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        match self {
            OperationName::Static(name) => name,
            OperationName::Shared(name) => name,
        }
    }
}

impl Deref for OperationName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for OperationName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

// Equality and hashing follow the text, whichever way it is stored.
impl PartialEq for OperationName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for OperationName {}

impl std::hash::Hash for OperationName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for OperationName {
    fn from(name: &'static str) -> Self {
        OperationName::Static(name)
    }
}

impl From<String> for OperationName {
    fn from(name: String) -> Self {
        OperationName::Shared(name.into())
    }
}

impl From<Arc<str>> for OperationName {
    fn from(name: Arc<str>) -> Self {
        OperationName::Shared(name)
    }
}

impl From<Cow<'static, str>> for OperationName {
    fn from(name: Cow<'static, str>) -> Self {
        match name {
            Cow::Borrowed(name) => OperationName::Static(name),
            Cow::Owned(name) => name.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn equal_text_is_equal_whatever_the_storage() {
        let names: HashSet<OperationName> = [
            OperationName::from("a.b.find_one"),
            OperationName::from(String::from("a.b.find_one")),
            OperationName::from(Cow::Borrowed("a.b.find_one")),
        ]
        .into_iter()
        .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn clones_share_the_string() {
        let name = OperationName::from(String::from("a.b.insert_one"));
        let copy = name.clone();
        match (&name, &copy) {
            (OperationName::Shared(a), OperationName::Shared(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("a String becomes a shared name"),
        }
        assert_eq!(
            format!("{copy} {copy:?}"),
            "a.b.insert_one \"a.b.insert_one\""
        );
    }
}
