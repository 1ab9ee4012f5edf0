//! `aggregate` with the stages Keel's tests and drivers' helpers need: `$match`, `$sort`,
//! `$limit`, `$skip`, `$project`, `$addFields`/`$set`, `$unset`, `$group` (`$sum`, `$count`,
//! `$avg`, `$min`, `$max`, `$first`, `$last`, `$push`) and `$count`.

use bson::{Bson, Document, doc};

use super::args::{self, ns};
use super::cursor::first_batch;
use super::find::query;
use super::{CommandError, Ctx};
use crate::query::compare::{as_f64, compare};
use crate::query::expr;
use crate::query::filter::Filter;
use crate::query::projection::Projection;
use crate::query::sort::SortSpec;

pub(super) fn aggregate(ctx: &Ctx<'_>, cmd: &Document) -> Result<Document, CommandError> {
    let pipeline = args::opt_array(cmd, "pipeline", "aggregate")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'aggregate.pipeline' is missing but a required field",
        )
    })?;
    let cursor = args::opt_doc(cmd, "cursor", "aggregate")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    })?;
    let batch_size = args::opt_non_negative(cursor, "batchSize", "aggregate.cursor")?;
    let stream = super::change_stream::is_change_stream(pipeline);
    let coll = match cmd.get("aggregate") {
        Some(Bson::String(_)) => args::collection_name(cmd, "aggregate")?,
        // `{aggregate: 1}`: database-level, served only for change streams.
        Some(Bson::Int32(1) | Bson::Int64(1)) if stream => "",
        Some(Bson::Double(d)) if stream && *d == 1.0 => "",
        Some(_) => {
            return Err(CommandError::new(
                super::codes::COMMAND_NOT_SUPPORTED,
                "database-level aggregation ({aggregate: 1}) is not supported by keel-testkit \
                 except for $changeStream",
            ));
        }
        None => return Err(CommandError::failed_to_parse("missing 'aggregate' field")),
    };
    if stream {
        let coll = Some(coll).filter(|c| !c.is_empty());
        return super::change_stream::aggregate(ctx, coll, pipeline, batch_size);
    }
    let mut stages = Vec::with_capacity(pipeline.len());
    for stage in pipeline {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "aggregate.pipeline",
                "object",
                stage,
            ));
        };
        if stage.contains_key("$changeStream") {
            return Err(CommandError::new(
                40602,
                "$changeStream is only valid as the first stage in a pipeline.",
            ));
        }
        if stage.len() != 1 {
            return Err(CommandError::new(
                40323,
                "A pipeline stage specification object must contain exactly one field.",
            ));
        }
        stages.push(stage);
    }
    let all = Filter::parse(&Document::new())?;
    let mut docs = match super::views::documents(ctx, coll)? {
        Some(view) => view,
        None => ctx.with_read_storage(|storage| {
            query(storage, ctx.db, coll, &all, &SortSpec::default(), 0, 0)
        }),
    };
    for stage in stages {
        docs = run_stage(stage, docs)?;
    }
    Ok(first_batch(ctx, ns(ctx.db, coll), docs, batch_size, false))
}

fn stage_doc<'a>(name: &str, arg: &'a Bson) -> Result<&'a Document, CommandError> {
    match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(CommandError::new(
            15955,
            format!("the {name} stage specification must be an object"),
        )),
    }
}

fn stage_count(name: &str, arg: &Bson) -> Result<usize, CommandError> {
    let n = as_f64(arg)
        .filter(|n| n.fract() == 0.0 && *n >= 0.0)
        .ok_or_else(|| {
            CommandError::new(
                15958,
                format!("invalid argument to {name} stage: Expected a non-negative number"),
            )
        })?;
    Ok(n as usize)
}

pub(super) fn run_stage(
    stage: &Document,
    docs: Vec<Document>,
) -> Result<Vec<Document>, CommandError> {
    let Some((name, arg)) = stage.iter().next() else {
        return Ok(docs);
    };
    match name.as_str() {
        "$match" => {
            let f = Filter::parse(stage_doc(name, arg)?)?;
            Ok(docs.into_iter().filter(|d| f.matches(d)).collect())
        }
        "$sort" => {
            let mut docs = docs;
            SortSpec::parse(stage_doc(name, arg)?)?.sort(&mut docs);
            Ok(docs)
        }
        "$limit" => {
            let n = stage_count(name, arg)?;
            if n == 0 {
                return Err(CommandError::new(15958, "the limit must be positive"));
            }
            Ok(docs.into_iter().take(n).collect())
        }
        "$skip" => Ok(docs.into_iter().skip(stage_count(name, arg)?).collect()),
        "$project" => {
            let p = Projection::parse(stage_doc(name, arg)?)?;
            docs.iter().map(|d| p.apply(d)).collect()
        }
        "$addFields" | "$set" => {
            let fields = stage_doc(name, arg)?;
            let mut out = Vec::with_capacity(docs.len());
            for mut d in docs {
                for (k, e) in fields {
                    if let Some(v) = expr::eval(&d, e)? {
                        let _ = crate::query::path::set(&mut d, k, v);
                    }
                }
                out.push(d);
            }
            Ok(out)
        }
        "$unset" => {
            let fields: Vec<String> = match arg {
                Bson::String(s) => vec![s.clone()],
                Bson::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
                _ => {
                    return Err(CommandError::new(
                        31002,
                        "$unset specification must be a string or an array",
                    ));
                }
            };
            Ok(docs
                .into_iter()
                .map(|mut d| {
                    for f in &fields {
                        crate::query::path::unset(&mut d, f);
                    }
                    d
                })
                .collect())
        }
        "$count" => {
            let Bson::String(field) = arg else {
                return Err(CommandError::new(
                    40156,
                    "the count field must be a non-empty string",
                ));
            };
            if field.is_empty() || field.starts_with('$') || field.contains('.') {
                return Err(CommandError::new(
                    40156,
                    "the count field must be a non-empty string",
                ));
            }
            if docs.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![
                doc! {field.clone(): i32::try_from(docs.len()).unwrap_or(i32::MAX)},
            ])
        }
        "$group" => group(stage_doc(name, arg)?, docs),
        other => Err(CommandError::new(
            40324,
            format!("Unrecognized pipeline stage name: '{other}'"),
        )),
    }
}

/// A running accumulator.
enum Acc {
    Sum {
        int: i64,
        float: f64,
        any_float: bool,
        any_long: bool,
    },
    Avg {
        total: f64,
        n: u64,
    },
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Option<Bson>),
    Push(Vec<Bson>),
}

impl Acc {
    fn new(op: &str) -> Result<Self, CommandError> {
        Ok(match op {
            "$sum" | "$count" => Acc::Sum {
                int: 0,
                float: 0.0,
                any_float: false,
                any_long: false,
            },
            "$avg" => Acc::Avg { total: 0.0, n: 0 },
            "$min" => Acc::Min(None),
            "$max" => Acc::Max(None),
            "$first" => Acc::First(None),
            "$last" => Acc::Last(None),
            "$push" => Acc::Push(Vec::new()),
            other => {
                return Err(CommandError::new(
                    15952,
                    format!("unknown group operator '{other}'"),
                ));
            }
        })
    }

    fn add(&mut self, v: Option<Bson>) {
        match self {
            Acc::Sum {
                int,
                float,
                any_float,
                any_long,
            } => match v {
                Some(Bson::Int32(i)) => *int = int.saturating_add(i64::from(i)),
                Some(Bson::Int64(i)) => {
                    *any_long = true;
                    *int = int.saturating_add(i);
                }
                Some(other) => {
                    if let Some(f) = as_f64(&other) {
                        *any_float = true;
                        *float += f;
                    }
                }
                None => {}
            },
            Acc::Avg { total, n } => {
                if let Some(f) = v.as_ref().and_then(as_f64) {
                    *total += f;
                    *n += 1;
                }
            }
            Acc::Min(cur) => {
                if let Some(v) = v.filter(|v| !matches!(v, Bson::Null))
                    && cur.as_ref().is_none_or(|c| compare(&v, c).is_lt())
                {
                    *cur = Some(v);
                }
            }
            Acc::Max(cur) => {
                if let Some(v) = v.filter(|v| !matches!(v, Bson::Null))
                    && cur.as_ref().is_none_or(|c| compare(&v, c).is_gt())
                {
                    *cur = Some(v);
                }
            }
            Acc::First(cur) => {
                if cur.is_none() {
                    *cur = Some(v.unwrap_or(Bson::Null));
                }
            }
            Acc::Last(cur) => *cur = Some(v.unwrap_or(Bson::Null)),
            Acc::Push(items) => {
                if let Some(v) = v {
                    items.push(v);
                }
            }
        }
    }

    fn finish(self) -> Bson {
        match self {
            Acc::Sum {
                int,
                float,
                any_float,
                any_long,
            } => {
                if any_float {
                    Bson::Double(float + int as f64)
                } else if !any_long {
                    i32::try_from(int).map_or(Bson::Int64(int), Bson::Int32)
                } else {
                    Bson::Int64(int)
                }
            }
            Acc::Avg { total, n } => {
                if n == 0 {
                    Bson::Null
                } else {
                    Bson::Double(total / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::First(v) | Acc::Last(v) => v.unwrap_or(Bson::Null),
            Acc::Push(items) => Bson::Array(items),
        }
    }
}

fn group(spec: &Document, docs: Vec<Document>) -> Result<Vec<Document>, CommandError> {
    let id_expr = spec
        .get("_id")
        .ok_or_else(|| CommandError::new(15955, "a group specification must include an _id"))?;
    let mut accumulators: Vec<(String, String, Bson)> = Vec::new();
    for (field, acc) in spec.iter().filter(|(k, _)| *k != "_id") {
        let Bson::Document(acc) = acc else {
            return Err(CommandError::new(
                40234,
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        let Some((op, arg)) = acc.iter().next().filter(|_| acc.len() == 1) else {
            return Err(CommandError::new(
                40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        };
        Acc::new(op)?;
        // `$count: {}` is `$sum: 1`.
        let arg = if op == "$count" {
            Bson::Int32(1)
        } else {
            arg.clone()
        };
        accumulators.push((field.clone(), op.clone(), arg));
    }
    let mut groups: Vec<(Bson, Vec<Acc>)> = Vec::new();
    for d in &docs {
        let key = expr::eval(d, id_expr)?.unwrap_or(Bson::Null);
        let pos = match groups.iter().position(|(k, _)| compare(k, &key).is_eq()) {
            Some(p) => p,
            None => {
                let accs = accumulators
                    .iter()
                    .map(|(_, op, _)| Acc::new(op))
                    .collect::<Result<_, _>>()?;
                groups.push((key, accs));
                groups.len() - 1
            }
        };
        for ((_, _, arg), acc) in accumulators.iter().zip(groups[pos].1.iter_mut()) {
            acc.add(expr::eval(d, arg)?);
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, accs)| {
            let mut out = doc! {"_id": key};
            for ((field, _, _), acc) in accumulators.iter().zip(accs) {
                out.insert(field.clone(), acc.finish());
            }
            out
        })
        .collect())
}
