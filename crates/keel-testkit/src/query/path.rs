//! Dotted field paths: reading with MongoDB's implicit array traversal, and writing for updates.

use bson::{Bson, Document};

/// Every value reachable at `path`, descending into arrays of documents the way the query
/// language does (`{"a.b": 1}` matches `{a: [{b: 1}]}`); numeric parts also index arrays.
pub(crate) fn lookup<'a>(doc: &'a Document, path: &str) -> Vec<&'a Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    if let Some(first) = doc.get(parts[0]) {
        walk(first, &parts[1..], &mut out);
    }
    out
}

fn walk<'a>(v: &'a Bson, rest: &[&str], out: &mut Vec<&'a Bson>) {
    let Some((head, tail)) = rest.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Bson::Document(d) => {
            if let Some(child) = d.get(*head) {
                walk(child, tail, out);
            }
        }
        Bson::Array(items) => {
            if let Ok(i) = head.parse::<usize>()
                && let Some(child) = items.get(i)
            {
                walk(child, tail, out);
            }
            for item in items {
                if let Bson::Document(d) = item
                    && let Some(child) = d.get(*head)
                {
                    walk(child, tail, out);
                }
            }
        }
        _ => {}
    }
}

/// The value at `path` following documents only (and numeric array indexes), as updates see it.
pub(crate) fn get<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for part in parts {
        cur = match cur {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Why a path cannot be written: an intermediate element is a scalar.
#[derive(Debug)]
pub(crate) struct PathNotViable {
    pub(crate) part: String,
    // Boxed to keep `Result<(), PathNotViable>` small on the update hot path.
    pub(crate) existing: Box<Bson>,
}

/// Sets `path` to `value`, creating intermediate documents as mongod's `$set` does.
pub(crate) fn set(doc: &mut Document, path: &str, value: Bson) -> Result<(), PathNotViable> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Some(rest) = rest else {
        doc.insert(head, value);
        return Ok(());
    };
    if !doc.contains_key(head) {
        doc.insert(head, Document::new());
    }
    match doc.get_mut(head) {
        Some(child) => set_in(child, rest, value),
        None => Ok(()),
    }
}

fn set_in(target: &mut Bson, path: &str, value: Bson) -> Result<(), PathNotViable> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match target {
        Bson::Document(d) => match rest {
            None => {
                d.insert(head, value);
                Ok(())
            }
            Some(r) => set(d, &format!("{head}.{r}"), value),
        },
        Bson::Array(items) => {
            let idx = head.parse::<usize>().map_err(|_| PathNotViable {
                part: head.to_owned(),
                existing: Box::new(Bson::Array(items.clone())),
            })?;
            while items.len() <= idx {
                items.push(Bson::Null);
            }
            match rest {
                None => {
                    items[idx] = value;
                    Ok(())
                }
                Some(r) => {
                    if !matches!(items[idx], Bson::Document(_) | Bson::Array(_)) {
                        items[idx] = Bson::Document(Document::new());
                    }
                    set_in(&mut items[idx], r, value)
                }
            }
        }
        other => Err(PathNotViable {
            part: head.to_owned(),
            existing: Box::new(other.clone()),
        }),
    }
}

/// Removes the value at `path`; returns whether something was removed. Array elements are
/// set to null rather than removed, as `$unset` does.
pub(crate) fn unset(doc: &mut Document, path: &str) -> bool {
    match path.split_once('.') {
        None => doc.remove(path).is_some(),
        Some((head, rest)) => match doc.get_mut(head) {
            Some(Bson::Document(d)) => unset(d, rest),
            Some(Bson::Array(items)) => unset_in_array(items, rest),
            _ => false,
        },
    }
}

fn unset_in_array(items: &mut [Bson], path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let Ok(idx) = head.parse::<usize>() else {
        return false;
    };
    match (items.get_mut(idx), rest) {
        (Some(slot), None) => {
            let changed = !matches!(slot, Bson::Null);
            *slot = Bson::Null;
            changed
        }
        (Some(Bson::Document(d)), Some(r)) => unset(d, r),
        (Some(Bson::Array(a)), Some(r)) => unset_in_array(a, r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn lookup_traverses_arrays_of_documents() {
        let d = doc! {"a": [{"b": 1}, {"b": 2}, 3]};
        assert_eq!(lookup(&d, "a.b"), vec![&Bson::Int32(1), &Bson::Int32(2)]);
        assert_eq!(lookup(&d, "a.1.b"), vec![&Bson::Int32(2)]);
    }

    #[test]
    fn set_creates_and_rejects_scalars() {
        let mut d = doc! {"x": 1};
        set(&mut d, "a.b.c", Bson::Int32(5)).unwrap();
        assert_eq!(d, doc! {"x": 1, "a": {"b": {"c": 5}}});
        assert!(set(&mut d, "x.y", Bson::Int32(1)).is_err());
    }
}
