//! The methods of `Collection<T>` and their operation names, built once per collection so a call
//! only clones a shared string.

use keel_core::OperationName;

/// A method of `Collection<T>`, as named in logs and metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    FindOne,
    Find,
    FindStream,
    CountDocuments,
    Aggregate,
    InsertOne,
    InsertMany,
    UpdateOne,
    UpdateMany,
    ReplaceOne,
    DeleteOne,
    DeleteMany,
    FindOneAndUpdate,
}

impl Method {
    const ALL: [Method; 13] = [
        Method::FindOne,
        Method::Find,
        Method::FindStream,
        Method::CountDocuments,
        Method::Aggregate,
        Method::InsertOne,
        Method::InsertMany,
        Method::UpdateOne,
        Method::UpdateMany,
        Method::ReplaceOne,
        Method::DeleteOne,
        Method::DeleteMany,
        Method::FindOneAndUpdate,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Method::FindOne => "find_one",
            Method::Find => "find",
            Method::FindStream => "find_stream",
            Method::CountDocuments => "count_documents",
            Method::Aggregate => "aggregate",
            Method::InsertOne => "insert_one",
            Method::InsertMany => "insert_many",
            Method::UpdateOne => "update_one",
            Method::UpdateMany => "update_many",
            Method::ReplaceOne => "replace_one",
            Method::DeleteOne => "delete_one",
            Method::DeleteMany => "delete_many",
            Method::FindOneAndUpdate => "find_one_and_update",
        }
    }
}

/// `"<database>.<collection>.<method>"` for every method.
#[derive(Debug)]
pub(crate) struct MethodNames([OperationName; Method::ALL.len()]);

impl MethodNames {
    pub(crate) fn new(database: &str, collection: &str) -> Self {
        Self(Method::ALL.map(|method| {
            OperationName::from(format!("{database}.{collection}.{}", method.as_str()))
        }))
    }

    pub(crate) fn get(&self, method: Method) -> OperationName {
        // `ALL` lists the variants in declaration order, so the discriminant is the index.
        self.0[method as usize].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_gets_its_own_name() {
        let names = MethodNames::new("app", "users");
        for (index, method) in Method::ALL.into_iter().enumerate() {
            assert_eq!(method as usize, index, "ALL is in declaration order");
            assert_eq!(
                names.get(method).as_str(),
                format!("app.users.{}", method.as_str())
            );
        }
        assert_eq!(names.get(Method::FindOne).as_str(), "app.users.find_one");
    }
}
