//! Branch conditions: a tiny expression language over collected slots.
//!
//! A condition is `PATH OP VALUE`, `PATH is_set` or `PATH is_unset`, where PATH is a dotted
//! path into the slots (`phone.line_type`, `attempts.reaches_limit`), OP is one
//! of `==`, `!=`, `>=`, `<=`, `>`, `<`, `contains`, and VALUE is a bare word,
//! a number, `true`/`false`, or `null`. It is deliberately small: staff can
//! read it in a flow file, and [`parse`] reports a malformed one at check time.

use serde_json::Value;
use std::collections::BTreeMap;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub path: Vec<String>,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
    Contains,
    IsSet,
    IsUnset,
}

/// Parses `text`; the error says what is wrong in words an editor of the flow
/// understands.
pub fn parse(text: &str) -> Result<Condition, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (path, op, value) = match parts.as_slice() {
        [path, "is_set"] => (path, Op::IsSet, Value::Null),
        [path, "is_unset"] => (path, Op::IsUnset, Value::Null),
        [path, op, value] => {
            let op = match *op {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                ">=" => Op::Ge,
                "<=" => Op::Le,
                ">" => Op::Gt,
                "<" => Op::Lt,
                "contains" => Op::Contains,
                other => {
                    return Err(format!(
                        "unknown operator \"{other}\" (use ==, !=, >=, <=, >, <, contains, is_set)"
                    ))
                }
            };
            (path, op, parse_value(value))
        }
        _ => {
            return Err(format!(
                "\"{text}\" is not of the form \"slot.path OP value\", \"slot.path is_set\" or \"slot.path is_unset\""
            ))
        }
    };
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(format!("\"{text}\" has an empty part in its slot path"));
    }
    Ok(Condition { path, op, value })
}

fn parse_value(word: &str) -> Value {
    match word {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match word.parse::<f64>() {
            Ok(n) => serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(word.to_string())),
            Err(_) => Value::String(word.trim_matches('"').to_string()),
        },
    }
}

/// Looks up a dotted path in the slots.
pub fn lookup<'a>(slots: &'a BTreeMap<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut current = slots.get(first)?;
    for key in rest {
        current = current.get(key.as_str())?;
    }
    Some(current)
}

impl Condition {
    /// Evaluates the condition; a missing slot makes every comparison false
    /// except `!=`.
    pub fn holds(&self, slots: &BTreeMap<String, Value>) -> bool {
        let found = lookup(slots, &self.path).filter(|v| !v.is_null());
        match (self.op, found) {
            (Op::IsSet, found) => found.is_some(),
            (Op::IsUnset, found) => found.is_none(),
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(v)) => values_equal(v, &self.value),
            (Op::Ne, Some(v)) => !values_equal(v, &self.value),
            (Op::Contains, Some(Value::Array(items))) => {
                items.iter().any(|item| values_equal(item, &self.value))
            }
            (Op::Contains, Some(Value::String(s))) => {
                self.value.as_str().is_some_and(|needle| s.contains(needle))
            }
            (Op::Contains, Some(_)) => false,
            (op, Some(v)) => match (v.as_f64(), self.value.as_f64()) {
                (Some(a), Some(b)) => match op {
                    Op::Ge => a >= b,
                    Op::Le => a <= b,
                    Op::Gt => a > b,
                    Op::Lt => a < b,
                    _ => false,
                },
                _ => false,
            },
        }
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slots() -> BTreeMap<String, Value> {
        let mut slots = BTreeMap::new();
        slots.insert(
            "phone".to_string(),
            json!({"line_type": "fixed_line", "problems": ["leading_zero"]}),
        );
        slots.insert(
            "attempts".to_string(),
            json!({"count": 6, "reaches_limit": true}),
        );
        slots
    }

    #[test]
    fn evaluates_each_operator() {
        let s = slots();
        let cases = [
            ("phone.line_type == fixed_line", true),
            ("phone.line_type != mobile", true),
            ("phone.line_type == mobile", false),
            ("phone.problems contains leading_zero", true),
            ("phone.problems contains invalid", false),
            ("attempts.count >= 5", true),
            ("attempts.count < 5", false),
            ("attempts.reaches_limit == true", true),
            ("attempts.reaches_limit == false", false),
            ("lockout is_set", false),
            ("phone is_set", true),
            ("missing.path != x", true),
            ("missing.path == x", false),
        ];
        for (text, expected) in cases {
            let condition = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(condition.holds(&s), expected, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_conditions() {
        assert!(parse("phone.line_type").is_err());
        assert!(parse("phone.line_type ~= x").is_err());
        assert!(parse("phone..x == 1").is_err());
    }
}
