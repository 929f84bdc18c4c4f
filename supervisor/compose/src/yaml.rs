//! YAML features compose files use beyond plain values: merge keys (`<<`),
//! resolved inside anchors that are themselves merged, and the `!reset` and
//! `!override` tags, which steer the merge of several files and are gone
//! from the value once the files are merged.

use serde_norway::value::TaggedValue;
use serde_norway::{Mapping, Value};

/// Resolves every `<<` merge key, innermost first, so that
/// `x-b: &b {<<: *a, k: v}` merged with `<<: *b` brings `a`'s keys too.
/// Keys of the mapping itself win over merged ones; among several merged
/// mappings (`<<: [*a, *b]`), the first one wins (YAML's merge rule).
pub fn resolve_merge_keys(v: &mut Value) -> Result<(), String> {
    match v {
        Value::Mapping(m) => {
            for (_, child) in m.iter_mut() {
                resolve_merge_keys(child)?;
            }
            if let Some(sources) = m.remove("<<") {
                let sources = match sources {
                    Value::Mapping(one) => vec![one],
                    Value::Sequence(items) => items
                        .into_iter()
                        .map(|i| match i {
                            Value::Mapping(one) => Ok(one),
                            other => Err(format!(
                                "a merge key (<<) takes a mapping or a list of mappings, not {}",
                                kind(&other)
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!(
                            "a merge key (<<) takes a mapping or a list of mappings, not {}",
                            kind(&other)
                        ));
                    }
                };
                let own = std::mem::take(m);
                let mut merged = Mapping::new();
                for source in sources {
                    for (k, val) in source {
                        if !merged.contains_key(&k) {
                            merged.insert(k, val);
                        }
                    }
                }
                // Own keys win, and keep their place ahead of merged ones.
                let mut out = own;
                for (k, val) in merged {
                    if !out.contains_key(&k) {
                        out.insert(k, val);
                    }
                }
                *m = out;
            }
            Ok(())
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(resolve_merge_keys),
        Value::Tagged(t) => resolve_merge_keys(&mut t.value),
        _ => Ok(()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Null => "nothing",
        _ => "a single value",
    }
}

/// The merge directive a value carries.
pub enum Directive {
    /// `!reset`: the key is removed (from what it would merge with, too).
    Reset,
    /// `!override`: the value replaces what it would merge with.
    Override,
}

/// The directive of a tagged value, if it is one of compose's.
pub fn directive(v: &Value) -> Option<Directive> {
    match v {
        Value::Tagged(t) if t.tag == "reset" => Some(Directive::Reset),
        Value::Tagged(t) if t.tag == "override" => Some(Directive::Override),
        _ => None,
    }
}

/// Removes what `!reset` marks and unwraps what `!override` marks, once the
/// merging is done. Other tags are unwrapped too.
pub fn strip_tags(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            let reset: Vec<Value> = m
                .iter()
                .filter(|(_, v)| matches!(directive(v), Some(Directive::Reset)))
                .map(|(k, _)| k.clone())
                .collect();
            for k in reset {
                m.remove(&k);
            }
            m.values_mut().for_each(strip_tags);
        }
        Value::Sequence(items) => {
            items.retain(|i| !matches!(directive(i), Some(Directive::Reset)));
            items.iter_mut().for_each(strip_tags);
        }
        Value::Tagged(_) => {
            let Value::Tagged(t) = std::mem::take(v) else {
                unreachable!()
            };
            let TaggedValue { value, .. } = *t;
            *v = value;
            strip_tags(v);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn merge_keys_inside_merged_anchors() {
        let mut v = yaml(
            "x-a: &a {restart: always, image: a}\nx-b: &b {<<: *a, image: b, init: true}\nservices:\n  s:\n    <<: *b\n    image: s\n  t:\n    <<: [*b, {tty: true, restart: 'no'}]\n",
        );
        resolve_merge_keys(&mut v).unwrap();
        let s = &v["services"]["s"];
        assert_eq!(s["image"], Value::from("s"));
        assert_eq!(s["restart"], Value::from("always"));
        assert_eq!(s["init"], Value::from(true));
        assert!(s.get("<<").is_none());
        // The first merged mapping wins over the second.
        let t = &v["services"]["t"];
        assert_eq!(t["restart"], Value::from("always"));
        assert_eq!(t["tty"], Value::from(true));
        assert!(serde_norway::to_string(&v).unwrap().find("<<").is_none());
    }

    #[test]
    fn a_merge_key_needs_mappings() {
        let mut v = yaml("s: {<<: [1]}\n");
        let e = resolve_merge_keys(&mut v).unwrap_err();
        assert!(e.contains("list of mappings"), "{e}");
    }

    #[test]
    fn tags_are_stripped() {
        let mut v = yaml("a: !reset [1]\nb: !override {c: 1}\nl: [x, !reset y]\n");
        assert!(matches!(directive(&v["a"]), Some(Directive::Reset)));
        strip_tags(&mut v);
        assert!(v.get("a").is_none());
        assert_eq!(v["b"]["c"], Value::from(1));
        assert_eq!(v["l"], yaml("[x]"));
    }
}
