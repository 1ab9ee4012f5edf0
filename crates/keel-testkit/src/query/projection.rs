//! Projections for `find` and `$project`: inclusion or exclusion of (dotted) fields, `_id`
//! handling, and computed fields from aggregation expressions.

use bson::{Bson, Document};

use super::expr;
use super::filter::truthy;
use crate::commands::CommandError;

#[derive(Debug, Clone)]
enum Node {
    Leaf,
    Branch(Vec<(String, Node)>),
}

/// A parsed projection.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    inclusion: bool,
    include_id: bool,
    tree: Vec<(String, Node)>,
    computed: Vec<(String, Bson)>,
}

fn insert_path(tree: &mut Vec<(String, Node)>, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let pos = tree.iter().position(|(k, _)| k == head);
    match (pos, rest) {
        (Some(i), None) => tree[i].1 = Node::Leaf,
        (None, None) => tree.push((head.to_owned(), Node::Leaf)),
        (Some(i), Some(r)) => {
            if let Node::Branch(sub) = &mut tree[i].1 {
                insert_path(sub, r);
            }
        }
        (None, Some(r)) => {
            let mut sub = Vec::new();
            insert_path(&mut sub, r);
            tree.push((head.to_owned(), Node::Branch(sub)));
        }
    }
}

impl Projection {
    /// Parses a projection; mixing inclusion and exclusion (other than `_id`) is an error as in
    /// mongod (codes 31253/31254).
    pub(crate) fn parse(spec: &Document) -> Result<Self, CommandError> {
        let mut inclusion: Option<bool> = None;
        let mut include_id = true;
        let mut tree = Vec::new();
        let mut computed = Vec::new();
        for (field, value) in spec {
            let flag = match value {
                Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => {
                    Some(truthy(value))
                }
                _ => None,
            };
            if field == "_id" {
                match flag {
                    Some(f) => include_id = f,
                    None => computed.push((field.clone(), value.clone())),
                }
                continue;
            }
            let is_inclusion = flag.unwrap_or(true);
            match inclusion {
                Some(true) if !is_inclusion => {
                    return Err(CommandError::new(
                        31254,
                        format!("Cannot do exclusion on field {field} in inclusion projection"),
                    ));
                }
                Some(false) if is_inclusion => {
                    return Err(CommandError::new(
                        31253,
                        format!("Cannot do inclusion on field {field} in exclusion projection"),
                    ));
                }
                _ => inclusion = Some(is_inclusion),
            }
            match flag {
                Some(_) => insert_path(&mut tree, field),
                None => computed.push((field.clone(), value.clone())),
            }
        }
        // `{_id: 0}` alone is an exclusion projection.
        Ok(Self {
            inclusion: inclusion.unwrap_or(false),
            include_id,
            tree,
            computed,
        })
    }

    /// Projects one document.
    pub(crate) fn apply(&self, doc: &Document) -> Result<Document, CommandError> {
        let mut out = if self.inclusion {
            let mut out = Document::new();
            if self.include_id
                && let Some(id) = doc.get("_id")
            {
                out.insert("_id", id.clone());
            }
            for (k, v) in include(doc, &self.tree) {
                out.insert(k, v);
            }
            out
        } else {
            let mut out = exclude(doc, &self.tree);
            if !self.include_id {
                out.remove("_id");
            }
            out
        };
        for (field, e) in &self.computed {
            match expr::eval(doc, e)? {
                Some(v) => {
                    let _ = super::path::set(&mut out, field, v);
                }
                None => {
                    out.remove(field);
                }
            }
        }
        Ok(out)
    }
}

fn find<'a>(tree: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    tree.iter().find(|(k, _)| k == key).map(|(_, n)| n)
}

fn include(src: &Document, tree: &[(String, Node)]) -> Document {
    let mut out = Document::new();
    for (k, v) in src {
        if k == "_id" && find(tree, k).is_none() {
            continue;
        }
        match find(tree, k) {
            Some(Node::Leaf) => {
                out.insert(k.clone(), v.clone());
            }
            Some(Node::Branch(sub)) => match v {
                Bson::Document(d) => {
                    out.insert(k.clone(), include(d, sub));
                }
                Bson::Array(items) => {
                    let projected: Vec<Bson> = items
                        .iter()
                        .filter_map(|i| match i {
                            Bson::Document(d) => Some(Bson::Document(include(d, sub))),
                            _ => None,
                        })
                        .collect();
                    out.insert(k.clone(), projected);
                }
                _ => {}
            },
            None => {}
        }
    }
    out
}

fn exclude(src: &Document, tree: &[(String, Node)]) -> Document {
    let mut out = Document::new();
    for (k, v) in src {
        match find(tree, k) {
            Some(Node::Leaf) => {}
            Some(Node::Branch(sub)) => match v {
                Bson::Document(d) => {
                    out.insert(k.clone(), exclude(d, sub));
                }
                Bson::Array(items) => {
                    let projected: Vec<Bson> = items
                        .iter()
                        .map(|i| match i {
                            Bson::Document(d) => Bson::Document(exclude(d, sub)),
                            other => other.clone(),
                        })
                        .collect();
                    out.insert(k.clone(), projected);
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn inclusion_exclusion_and_errors() {
        let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "d": 3};
        let p = Projection::parse(&doc! {"a.b": 1}).unwrap();
        assert_eq!(p.apply(&d).unwrap(), doc! {"_id": 1, "a": {"b": 1}});
        let p = Projection::parse(&doc! {"a": 0, "_id": 0}).unwrap();
        assert_eq!(p.apply(&d).unwrap(), doc! {"d": 3});
        assert_eq!(
            Projection::parse(&doc! {"a": 1, "d": 0}).unwrap_err().code,
            31254
        );
        let p = Projection::parse(&doc! {"x": "$a.c", "_id": 0}).unwrap();
        assert_eq!(p.apply(&d).unwrap(), doc! {"x": 2});
    }
}
