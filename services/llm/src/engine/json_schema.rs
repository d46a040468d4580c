//! JSON Schema to grammar: the answers a schema accepts, as bytes the
//! matcher can enforce token by token, and the grammars of OpenAI's
//! `json_object` responses and tool calls.
//!
//! Enforced by the grammar: JSON syntax, `type` (one or several), `enum`,
//! `const`, `properties` with `required` (in the schema's order),
//! `additionalProperties`, `items`, `minItems`/`maxItems`,
//! `minLength`/`maxLength`, `anyOf`/`oneOf`, `allOf` of one schema, and
//! `$ref` into `$defs`/`definitions` (recursion included). Numeric bounds
//! (`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//! `multipleOf`) are checked on the finished answer ([`check_bounds`]).
//! Keywords that would constrain the answer in other ways (`pattern`,
//! `not`, ...) are refused with an error naming them, rather than
//! ignored. Annotations (`title`, `description`, `format`, ...) are
//! ignored.

use std::collections::HashMap;

use serde_json::Value;

use super::grammar::{Builder, ByteSet, Elem, Grammar, RuleId, Seq, literal};

/// Why a schema cannot be enforced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(String);

fn err<T>(message: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(message.into()))
}

/// Keywords that change what is valid and that neither the grammar nor
/// [`check_bounds`] enforces.
const UNSUPPORTED: [&str; 14] = [
    "pattern",
    "patternProperties",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "uniqueItems",
    "contains",
    "prefixItems",
    "minProperties",
    "maxProperties",
    "propertyNames",
];

/// Integer ranges up to this wide are enforced by the grammar.
const SPELLED_OUT: usize = 10_000;

/// Longest run of digits in a number's integer or fraction part.
const MAX_DIGITS: usize = 16;

/// One tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// The JSON Schema of its arguments.
    pub parameters: Value,
}

/// How tool calls may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolMode {
    /// A call (or several) and nothing else.
    Required,
    /// A call, or a text answer that does not start like one.
    Auto,
}

struct Compiler<'a> {
    g: Builder,
    /// The schema `$ref`s resolve in.
    root: &'a Value,
    refs: HashMap<String, RuleId>,
    ws: Option<RuleId>,
    space: Option<RuleId>,
    string: Option<RuleId>,
    value: Option<RuleId>,
}

fn r(id: RuleId) -> Elem {
    Elem::Rule(id)
}

fn bytes(set: ByteSet) -> Elem {
    Elem::Bytes(set)
}

fn cat(parts: impl IntoIterator<Item = Seq>) -> Seq {
    parts.into_iter().flatten().collect()
}

impl<'a> Compiler<'a> {
    fn new(root: &'a Value) -> Self {
        Self {
            g: Builder::default(),
            root,
            refs: HashMap::new(),
            ws: None,
            space: None,
            string: None,
            value: None,
        }
    }

    /// `:` and an optional space, as JSON is written by people and by
    /// serialisers alike.
    fn colon(&mut self) -> Seq {
        let space = match self.space {
            Some(id) => id,
            None => {
                let id = self.g.rule(vec![Vec::new(), literal(" ")]);
                self.space = Some(id);
                id
            }
        };
        vec![bytes(ByteSet::byte(b':')), r(space)]
    }

    /// `,` and white space.
    fn comma(&mut self) -> Seq {
        vec![bytes(ByteSet::byte(b',')), self.ws()]
    }

    /// After an opening and before a closing bracket, and after a comma:
    /// nothing, a space, or a line break and an indent.
    fn ws(&mut self) -> Elem {
        if let Some(id) = self.ws {
            return r(id);
        }
        let indent = self.g.repeat(&[bytes(ByteSet::of(b" \t"))], 0, Some(20));
        let id = self
            .g
            .rule(vec![Vec::new(), literal(" "), cat([literal("\n"), indent])]);
        self.ws = Some(id);
        r(id)
    }

    /// One character of a JSON string: printable ASCII but `"` and `\`,
    /// an escape, or a whole UTF-8 sequence.
    fn char_rule(&mut self) -> RuleId {
        let hex = bytes(
            ByteSet::range(b'0', b'9')
                .union(ByteSet::range(b'a', b'f'))
                .union(ByteSet::range(b'A', b'F')),
        );
        let cont = bytes(ByteSet::range(0x80, 0xBF));
        let plain = ByteSet::range(0x20, 0x7E).without(b"\"\\");
        self.g.rule(vec![
            vec![bytes(plain)],
            cat([literal("\\"), vec![bytes(ByteSet::of(b"\"\\/bfnrt"))]]),
            cat([literal("\\u"), vec![hex; 4]]),
            vec![bytes(ByteSet::range(0xC2, 0xDF)), cont],
            vec![bytes(ByteSet::range(0xE0, 0xEF)), cont, cont],
            vec![bytes(ByteSet::range(0xF0, 0xF4)), cont, cont, cont],
        ])
    }

    fn string(&mut self, min: usize, max: Option<usize>) -> Elem {
        if min == 0
            && max.is_none()
            && let Some(id) = self.string
        {
            return r(id);
        }
        let ch = self.char_rule();
        let body = self.g.repeat(&[r(ch)], min, max);
        let id = self.g.rule(vec![cat([literal("\""), body, literal("\"")])]);
        if min == 0 && max.is_none() {
            self.string = Some(id);
        }
        r(id)
    }

    fn digits(&mut self, first: ByteSet) -> Seq {
        let mut seq = vec![bytes(first)];
        seq.extend(self.g.repeat(
            &[bytes(ByteSet::range(b'0', b'9'))],
            0,
            Some(MAX_DIGITS - 1),
        ));
        seq
    }

    fn integer(&mut self) -> Elem {
        let nonzero = self.digits(ByteSet::range(b'1', b'9'));
        let int = self.g.rule(vec![literal("0"), nonzero]);
        let sign = self.g.rule(vec![Vec::new(), literal("-")]);
        r(self.g.rule(vec![vec![r(sign), r(int)]]))
    }

    /// An integer within the schema's bounds: every value spelled out (as
    /// a trie) when the range is small, no minus sign when it cannot be
    /// negative; [`check_bounds`] covers the rest.
    fn bounded_integer(
        &mut self,
        obj: &serde_json::Map<String, Value>,
    ) -> Result<Elem, SchemaError> {
        let get = |key: &str| obj.get(key).and_then(Value::as_f64);
        let lo = match (get("minimum"), get("exclusiveMinimum")) {
            (Some(m), Some(x)) => Some(m.ceil().max(x.floor() + 1.0)),
            (Some(m), None) => Some(m.ceil()),
            (None, Some(x)) => Some(x.floor() + 1.0),
            (None, None) => None,
        };
        let hi = match (get("maximum"), get("exclusiveMaximum")) {
            (Some(m), Some(x)) => Some(m.floor().min(x.ceil() - 1.0)),
            (Some(m), None) => Some(m.floor()),
            (None, Some(x)) => Some(x.ceil() - 1.0),
            (None, None) => None,
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi < lo => {
                err(format!("no integer lies between {lo} and {hi}"))
            }
            (Some(lo), Some(hi))
                if hi - lo <= SPELLED_OUT as f64 && lo.abs() < 1e15 && hi.abs() < 1e15 =>
            {
                let words: Vec<String> = (lo as i64..=hi as i64).map(|n| n.to_string()).collect();
                Ok(self.words(&words))
            }
            (Some(lo), _) if lo >= 0.0 => {
                let nonzero = self.digits(ByteSet::range(b'1', b'9'));
                Ok(r(self.g.rule(vec![literal("0"), nonzero])))
            }
            _ => Ok(self.integer()),
        }
    }

    /// Exactly one of `words`, as a trie of rules so that matching stays
    /// deterministic however many there are.
    fn words(&mut self, words: &[String]) -> Elem {
        let mut sorted: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        r(self.trie(&sorted))
    }

    fn trie(&mut self, words: &[&[u8]]) -> RuleId {
        let mut alts = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let Some(&first) = words[i].first() else {
                alts.push(Vec::new());
                i += 1;
                continue;
            };
            let end = i + words[i..]
                .iter()
                .take_while(|w| w.first() == Some(&first))
                .count();
            let rest: Vec<&[u8]> = words[i..end].iter().map(|w| &w[1..]).collect();
            let alt = if rest.len() == 1 {
                std::iter::once(first)
                    .chain(rest[0].iter().copied())
                    .map(|b| bytes(ByteSet::byte(b)))
                    .collect()
            } else {
                vec![bytes(ByteSet::byte(first)), r(self.trie(&rest))]
            };
            alts.push(alt);
            i = end;
        }
        self.g.rule(alts)
    }

    fn number(&mut self) -> Elem {
        let int = self.integer();
        let digits = self.digits(ByteSet::range(b'0', b'9'));
        let frac = self
            .g
            .rule(vec![Vec::new(), cat([literal("."), digits.clone()])]);
        let exp_sign = self.g.rule(vec![Vec::new(), literal("+"), literal("-")]);
        let exp = self.g.rule(vec![
            Vec::new(),
            cat([vec![bytes(ByteSet::of(b"eE")), r(exp_sign)], digits]),
        ]);
        r(self.g.rule(vec![vec![int, r(frac), r(exp)]]))
    }

    fn literal_value(&mut self, v: &Value) -> Seq {
        literal(&v.to_string())
    }

    /// `open ws item (, ws item){min-1, max-1} ws close`, or `open ws close`
    /// when none may be.
    fn list(&mut self, open: &str, item: Seq, close: &str, min: usize, max: Option<usize>) -> Elem {
        let ws = self.ws();
        let mut alts = Vec::new();
        if min == 0 {
            alts.push(cat([literal(open), vec![ws], literal(close)]));
        }
        if max != Some(0) {
            let sep_item = cat([self.comma(), item.clone()]);
            let rest = self.g.repeat(
                &sep_item,
                min.saturating_sub(1),
                max.map(|m| m.saturating_sub(1)),
            );
            alts.push(cat([
                literal(open),
                vec![ws],
                item,
                rest,
                vec![ws],
                literal(close),
            ]));
        }
        r(self.g.rule(alts))
    }

    /// Any JSON value.
    fn value(&mut self) -> Elem {
        if let Some(id) = self.value {
            return r(id);
        }
        let id = self.g.reserve();
        self.value = Some(id);
        let object = self.map(r(id));
        let array = self.list("[", vec![r(id)], "]", 0, None);
        let string = self.string(0, None);
        let number = self.number();
        self.g.define(
            id,
            vec![
                vec![object],
                vec![array],
                vec![string],
                vec![number],
                literal("true"),
                literal("false"),
                literal("null"),
            ],
        );
        r(id)
    }

    /// An object with any keys and values of one schema.
    fn map(&mut self, value: Elem) -> Elem {
        let key = self.string(0, None);
        let member = cat([vec![key], self.colon(), vec![value]]);
        self.list("{", member, "}", 0, None)
    }

    fn resolve(&mut self, reference: &str) -> Result<Elem, SchemaError> {
        if let Some(&id) = self.refs.get(reference) {
            return Ok(r(id));
        }
        let Some(pointer) = reference.strip_prefix('#') else {
            return err(format!(
                "$ref {reference:?}: only references inside the schema (#/...) are supported"
            ));
        };
        let root = self.root;
        let Some(target) = root.pointer(pointer) else {
            return err(format!("$ref {reference:?} points at nothing"));
        };
        let id = self.g.reserve();
        self.refs.insert(reference.to_owned(), id);
        let body = self.schema(target)?;
        self.g.define(id, vec![vec![body]]);
        Ok(r(id))
    }

    fn schema(&mut self, s: &Value) -> Result<Elem, SchemaError> {
        let obj = match s {
            Value::Bool(true) => return Ok(self.value()),
            Value::Object(o) if o.is_empty() => return Ok(self.value()),
            Value::Object(o) => o,
            Value::Bool(false) => return err("the schema `false` accepts nothing"),
            other => return err(format!("a schema must be an object, not {other}")),
        };
        if let Some(k) = UNSUPPORTED.iter().find(|k| obj.contains_key(**k)) {
            return err(format!(
                "the schema keyword {k:?} is not supported for constrained output"
            ));
        }
        if let Some(reference) = obj.get("$ref") {
            let Some(reference) = reference.as_str() else {
                return err("$ref must be a string");
            };
            return self.resolve(reference);
        }
        if let Some(v) = obj.get("const") {
            let seq = self.literal_value(v);
            return Ok(r(self.g.rule(vec![seq])));
        }
        if let Some(values) = obj.get("enum") {
            let Some(values) = values.as_array().filter(|v| !v.is_empty()) else {
                return err("enum must be a non-empty array");
            };
            let words: Vec<String> = values.iter().map(Value::to_string).collect();
            return Ok(self.words(&words));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(options) = obj.get(key) {
                let Some(options) = options.as_array().filter(|v| !v.is_empty()) else {
                    return err(format!("{key} must be a non-empty array"));
                };
                let mut alts = Vec::new();
                for option in options {
                    alts.push(vec![self.schema(&merged(obj, option, key))?]);
                }
                return Ok(r(self.g.rule(alts)));
            }
        }
        if let Some(all) = obj.get("allOf") {
            return match all.as_array().map(Vec::as_slice) {
                Some([one]) => self.schema(&merged(obj, one, "allOf")),
                _ => err("allOf is supported with one schema only"),
            };
        }
        match obj.get("type") {
            Some(Value::String(t)) => self.typed(t, obj),
            Some(Value::Array(types)) => {
                let mut alts = Vec::new();
                for t in types {
                    let Some(t) = t.as_str() else {
                        return err("type must be a string or a list of strings");
                    };
                    alts.push(vec![self.typed(t, obj)?]);
                }
                if alts.is_empty() {
                    return err("type must not be an empty list");
                }
                Ok(r(self.g.rule(alts)))
            }
            Some(_) => err("type must be a string or a list of strings"),
            None if obj.contains_key("properties") => self.typed("object", obj),
            None if obj.contains_key("items") => self.typed("array", obj),
            None => Ok(self.value()),
        }
    }

    fn typed(
        &mut self,
        t: &str,
        obj: &serde_json::Map<String, Value>,
    ) -> Result<Elem, SchemaError> {
        let count = |key: &str| -> Result<Option<usize>, SchemaError> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX).min(100_000))),
                    None => err(format!("{key} must be a non-negative integer")),
                },
            }
        };
        match t {
            "string" => {
                let min = count("minLength")?.unwrap_or(0);
                let max = count("maxLength")?;
                if max.is_some_and(|m| m < min) {
                    return err("maxLength is below minLength");
                }
                Ok(self.string(min, max))
            }
            "number" => Ok(self.number()),
            "integer" => self.bounded_integer(obj),
            "boolean" => Ok(r(self.g.rule(vec![literal("true"), literal("false")]))),
            "null" => Ok(r(self.g.rule(vec![literal("null")]))),
            "array" => {
                let item = match obj.get("items") {
                    None => self.value(),
                    Some(items) => self.schema(items)?,
                };
                let min = count("minItems")?.unwrap_or(0);
                let max = count("maxItems")?;
                if max.is_some_and(|m| m < min) {
                    return err("maxItems is below minItems");
                }
                Ok(self.list("[", vec![item], "]", min, max))
            }
            "object" => self.object(obj),
            other => err(format!("unknown type {other:?}")),
        }
    }

    fn object(&mut self, obj: &serde_json::Map<String, Value>) -> Result<Elem, SchemaError> {
        let additional = obj.get("additionalProperties");
        let properties = match obj.get("properties") {
            Some(Value::Object(p)) if !p.is_empty() => p,
            Some(Value::Object(_)) | None => {
                return match additional {
                    Some(Value::Bool(false)) => {
                        let ws = self.ws();
                        let empty = cat([literal("{"), vec![ws], literal("}")]);
                        Ok(r(self.g.rule(vec![empty])))
                    }
                    None | Some(Value::Bool(true)) => {
                        let value = self.value();
                        Ok(self.map(value))
                    }
                    Some(schema) => {
                        let value = self.schema(schema)?;
                        Ok(self.map(value))
                    }
                };
            }
            Some(_) => return err("properties must be an object"),
        };
        let required: Vec<&str> = match obj.get("required") {
            None => Vec::new(),
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            Some(_) => return err("required must be an array of names"),
        };
        if let Some(missing) = required.iter().find(|n| !properties.contains_key(**n)) {
            return err(format!(
                "required property {missing:?} is not among the properties"
            ));
        }
        let ws = self.ws();
        let comma = self.comma();
        // key: value, for each property in the schema's order.
        let mut members = Vec::with_capacity(properties.len());
        for (name, schema) in properties {
            let value = self.schema(schema)?;
            let key = literal(&Value::String(name.clone()).to_string());
            members.push((
                cat([key, self.colon(), vec![value]]),
                required.contains(&name.as_str()),
            ));
        }
        // rest[i][first]: the members from i on, `first` when none came
        // before (no comma); optional members may be left out.
        let n = members.len();
        let mut rest: Vec<[RuleId; 2]> = (0..=n)
            .map(|_| [self.g.reserve(), self.g.reserve()])
            .collect();
        for i in (0..=n).rev() {
            for first in [false, true] {
                let mut alts = Vec::new();
                for j in i..n {
                    let mut alt = if first { Vec::new() } else { comma.clone() };
                    alt.extend(members[j].0.iter().copied());
                    alt.push(r(rest[j + 1][0]));
                    alts.push(alt);
                    if members[j].1 {
                        break;
                    }
                }
                if members[i..].iter().all(|m| !m.1) {
                    alts.push(if first { Vec::new() } else { vec![ws] });
                }
                self.g.define(rest[i][usize::from(first)], alts);
            }
        }
        let start = rest.swap_remove(0)[1];
        Ok(r(self.g.rule(vec![cat([
            literal("{"),
            vec![ws, r(start)],
            literal("}"),
        ])])))
    }
}

/// `obj` without `key`, with `option`'s keywords on top: a branch of an
/// `anyOf`/`oneOf`/`allOf` keeps the keywords beside it.
fn merged(obj: &serde_json::Map<String, Value>, option: &Value, key: &str) -> Value {
    let Value::Object(extra) = option else {
        return option.clone();
    };
    let mut out: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| *k != key && !ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(out)
}

/// Keywords that describe and do not constrain.
const ANNOTATIONS: [&str; 8] = [
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$defs",
    "definitions",
];

/// The answers `schema` accepts (as compact or indented JSON).
pub fn schema_grammar(schema: &Value) -> Result<Grammar, SchemaError> {
    let mut c = Compiler::new(schema);
    let value = c.schema(schema)?;
    let root = c.g.rule(vec![vec![value]]);
    Ok(c.g.build(root))
}

/// Any JSON object (`response_format: json_object`).
pub fn json_object_grammar() -> Grammar {
    let any = Value::Object(serde_json::Map::new());
    let mut c = Compiler::new(&any);
    let value = c.value();
    let object = c.map(value);
    let root = c.g.rule(vec![vec![object]]);
    c.g.build(root)
}

/// Tool calls: `{"name": ..., "arguments": {...}}` for one of `tools`, bare
/// or in Hermes-style `<tool_call>` tags (as Qwen and others are trained
/// to write them); several in a JSON list or one tag after another when
/// `parallel`. In [`ToolMode::Auto`] a text answer may come instead, as
/// long as it does not start like a call (`{`, `[`, `<`, white space).
pub fn tool_grammar(
    tools: &[Tool],
    mode: ToolMode,
    parallel: bool,
) -> Result<Grammar, SchemaError> {
    if tools.is_empty() {
        return err("tools must not be empty");
    }
    let placeholder = Value::Null;
    let mut c = Compiler::new(&placeholder);
    let ws = c.ws();
    let colon = c.colon();
    let comma = c.comma();
    let mut calls = Vec::new();
    for tool in tools {
        c.root = &tool.parameters;
        c.refs.clear();
        let arguments = match &tool.parameters {
            Value::Null => {
                let value = c.value();
                c.map(value)
            }
            schema => c
                .schema(schema)
                .map_err(|e| SchemaError(format!("tool {}: {e}", tool.name)))?,
        };
        let name = literal(&Value::String(tool.name.clone()).to_string());
        calls.push(cat([
            literal("{"),
            vec![ws],
            literal("\"name\""),
            colon.clone(),
            name,
            comma.clone(),
            literal("\"arguments\""),
            colon.clone(),
            vec![arguments, ws],
            literal("}"),
        ]));
    }
    let call = c.g.rule(calls);
    let tagged = cat([
        literal("<tool_call>"),
        vec![ws, r(call), ws],
        literal("</tool_call>"),
    ]);
    let mut alts = vec![vec![r(call)], tagged.clone()];
    if parallel {
        alts.push(vec![c.list("[", vec![r(call)], "]", 1, None)]);
        let more = c.g.repeat(&cat([vec![ws], tagged.clone()]), 1, None);
        alts.push(cat([tagged, more]));
    }
    if mode == ToolMode::Auto {
        let first = ByteSet::except(b"{[< \t\r\n");
        let rest = c.g.repeat(&[bytes(ByteSet::all())], 0, None);
        alts.push(cat([vec![bytes(first)], rest]));
    }
    let root = c.g.rule(alts);
    Ok(c.g.build(root))
}

/// The calls in an answer written under [`tool_grammar`]: (name,
/// arguments) each; `None` when it is a text answer.
pub fn parse_tool_calls(answer: &str) -> Option<Vec<(String, Value)>> {
    let text = answer.trim();
    let values: Vec<Value> = if text.starts_with("<tool_call>") {
        text.split("<tool_call>")
            .map(|part| part.trim().trim_end_matches("</tool_call>").trim())
            .filter(|part| !part.is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .ok()?
    } else if text.starts_with('[') {
        serde_json::from_str(text).ok()?
    } else if text.starts_with('{') {
        vec![serde_json::from_str(text).ok()?]
    } else {
        return None;
    };
    values
        .into_iter()
        .map(|v| match (v.get("name"), v.get("arguments")) {
            (Some(Value::String(name)), Some(arguments)) => Some((name.clone(), arguments.clone())),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .filter(|calls| !calls.is_empty())
}

/// Checks the numeric bounds the grammar does not enforce; the error says
/// where and which.
pub fn check_bounds(schema: &Value, value: &Value) -> Result<(), String> {
    bounds(schema, value, schema, "", 0)
}

fn bounds(
    schema: &Value,
    value: &Value,
    root: &Value,
    at: &str,
    depth: usize,
) -> Result<(), String> {
    let Value::Object(obj) = schema else {
        return Ok(());
    };
    if depth > 64 {
        return Ok(());
    }
    let here = if at.is_empty() { "/" } else { at };
    if let Some(target) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
    {
        return bounds(target, value, root, at, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = obj.get(key).and_then(Value::as_array) {
            let mut first = None;
            for option in options {
                match bounds(&merged(obj, option, key), value, root, at, depth + 1) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            return first.map_or(Ok(()), Err);
        }
    }
    if let Some([one]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return bounds(&merged(obj, one, "allOf"), value, root, at, depth + 1);
    }
    // Branches of a union are told apart by what the grammar enforces.
    if let Some(t) = obj.get("type")
        && !type_matches(t, value)
    {
        return Err(format!("{value} at {here} is not of type {t}"));
    }
    if let Some(x) = value.as_f64() {
        let limit = |key: &str| obj.get(key).and_then(Value::as_f64);
        let broken = [
            ("minimum", limit("minimum").filter(|&m| x < m)),
            ("maximum", limit("maximum").filter(|&m| x > m)),
            (
                "exclusiveMinimum",
                limit("exclusiveMinimum").filter(|&m| x <= m),
            ),
            (
                "exclusiveMaximum",
                limit("exclusiveMaximum").filter(|&m| x >= m),
            ),
            (
                "multipleOf",
                limit("multipleOf")
                    .filter(|&m| m > 0.0 && ((x / m) - (x / m).round()).abs() > 1e-9),
            ),
        ];
        if let Some((key, Some(m))) = broken.iter().find(|(_, m)| m.is_some()) {
            return Err(format!("{x} at {here} breaks {key}: {m}"));
        }
    }
    match value {
        Value::Object(members) => {
            let properties = obj.get("properties").and_then(Value::as_object);
            for (k, v) in members {
                let schema = properties
                    .and_then(|p| p.get(k))
                    .or_else(|| obj.get("additionalProperties"));
                if let Some(schema) = schema {
                    bounds(schema, v, root, &format!("{at}/{k}"), depth + 1)?;
                }
            }
        }
        Value::Array(items) => {
            if let Some(schema) = obj.get("items") {
                for (i, v) in items.iter().enumerate() {
                    bounds(schema, v, root, &format!("{at}/{i}"), depth + 1)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn type_matches(t: &Value, value: &Value) -> bool {
    match t {
        Value::String(t) => match t.as_str() {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        },
        Value::Array(types) => types.iter().any(|t| type_matches(t, value)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::engine::grammar::Matcher;

    fn accepts(g: &Grammar, text: &str) -> bool {
        let mut m = Matcher::new(Arc::new(g.clone()));
        m.advance(text.as_bytes()) && m.can_end()
    }

    #[test]
    fn any_json_object() {
        let g = json_object_grammar();
        for ok in [
            "{}",
            "{ }",
            r#"{"a": 1, "b": [true, null, "x\"y\u00e9"], "c": {"d": -1.5e3}}"#,
            "{\n  \"k\": \"caf\u{e9} \u{1f600}\"\n}",
        ] {
            assert!(accepts(&g, ok), "{ok}");
        }
        for bad in [
            "[]",
            "{",
            r#"{"a" 1}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1,}"#,
            "{} x",
            r#"{"a": tru}"#,
        ] {
            assert!(!accepts(&g, bad), "{bad}");
        }
    }

    #[test]
    fn objects_follow_their_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "action": { "enum": ["turn_on", "turn_off"] },
                "room": { "type": "string", "maxLength": 12 },
                "brightness": { "type": "integer", "minimum": 0, "maximum": 100 },
                "color": { "type": ["string", "null"] }
            },
            "required": ["action", "room"],
            "additionalProperties": false
        });
        let g = schema_grammar(&schema).unwrap();
        for ok in [
            r#"{"action": "turn_on", "room": "kitchen"}"#,
            r#"{"action":"turn_off","room":"hall","brightness":50}"#,
            r#"{"action": "turn_on", "room": "x", "color": null}"#,
            r#"{"action": "turn_on", "room": "x", "brightness": 5, "color": "red"}"#,
        ] {
            assert!(accepts(&g, ok), "{ok}");
        }
        for bad in [
            r#"{"action": "dim", "room": "kitchen"}"#,
            r#"{"room": "kitchen", "action": "turn_on"}"#,
            r#"{"action": "turn_on"}"#,
            r#"{"action": "turn_on", "room": "a very long room name"}"#,
            r#"{"action": "turn_on", "room": "x", "brightness": 5.5}"#,
            r#"{"action": "turn_on", "room": "x", "extra": 1}"#,
        ] {
            assert!(!accepts(&g, bad), "{bad}");
        }
        let over = json!({"action": "turn_on", "room": "x", "brightness": 150});
        assert_eq!(
            check_bounds(&schema, &over).unwrap_err(),
            "150 at /brightness breaks maximum: 100"
        );
        assert!(
            check_bounds(
                &schema,
                &json!({"action": "turn_on", "room": "x", "brightness": 100})
            )
            .is_ok()
        );
        // As pydantic writes an optional bounded field: the bound still holds.
        let optional = json!({"properties": {"b": {"anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}
        ]}}});
        assert!(check_bounds(&optional, &json!({"b": 150})).is_err());
        assert!(check_bounds(&optional, &json!({"b": null})).is_ok());
        assert!(check_bounds(&optional, &json!({"b": 100})).is_ok());
    }

    #[test]
    fn integer_bounds_are_enforced_where_they_can_be() {
        let percent =
            schema_grammar(&json!({"type": "integer", "minimum": 0, "maximum": 100})).unwrap();
        for ok in ["0", "7", "42", "100"] {
            assert!(accepts(&percent, ok), "{ok}");
        }
        for bad in ["-1", "101", "007", "1000", "5.0"] {
            assert!(!accepts(&percent, bad), "{bad}");
        }
        let mut m = Matcher::new(Arc::new(percent));
        assert!(
            m.advance(b"10") && m.can_end() && !m.must_end(),
            "100 may follow"
        );
        let odd = schema_grammar(
            &json!({"type": "integer", "exclusiveMinimum": -3, "exclusiveMaximum": 3}),
        )
        .unwrap();
        assert!(
            accepts(&odd, "-2")
                && accepts(&odd, "2")
                && !accepts(&odd, "3")
                && !accepts(&odd, "-3")
        );
        let natural = schema_grammar(&json!({"type": "integer", "minimum": 1})).unwrap();
        assert!(accepts(&natural, "123456789") && !accepts(&natural, "-5"));
        assert!(schema_grammar(&json!({"type": "integer", "minimum": 5, "maximum": 4})).is_err());
    }

    #[test]
    fn references_arrays_and_unions() {
        let schema = json!({
            "$defs": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "children": { "type": "array", "items": { "$ref": "#/$defs/Node" }, "maxItems": 2 }
                    },
                    "required": ["name"]
                }
            },
            "anyOf": [{ "$ref": "#/$defs/Node" }, { "type": "array", "items": { "type": "number" }, "minItems": 1 }]
        });
        let g = schema_grammar(&schema).unwrap();
        for ok in [
            r#"{"name": "a"}"#,
            r#"{"name": "a", "children": [{"name": "b", "children": []}, {"name": "c"}]}"#,
            "[1, 2.5, -3]",
        ] {
            assert!(accepts(&g, ok), "{ok}");
        }
        for bad in [
            "[]",
            r#"{"name": "a", "children": [{"name": "b"}, {"name": "c"}, {"name": "d"}]}"#,
            r#"{"children": []}"#,
        ] {
            assert!(!accepts(&g, bad), "{bad}");
        }
    }

    #[test]
    fn unsupported_keywords_are_refused_by_name() {
        let e = schema_grammar(&json!({"type": "string", "pattern": "^a+$"})).unwrap_err();
        assert!(e.to_string().contains("\"pattern\""), "{e}");
        assert!(schema_grammar(&json!({"$ref": "http://example/schema"})).is_err());
        assert!(
            schema_grammar(&json!({"type": "object", "required": ["x"], "properties": {"y": {}}}))
                .is_err()
        );
    }

    #[test]
    fn tool_calls_bare_tagged_or_text() {
        let tools = vec![
            Tool {
                name: "set_light".into(),
                parameters: json!({"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]}),
            },
            Tool {
                name: "get_time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
        ];
        let required = tool_grammar(&tools, ToolMode::Required, true).unwrap();
        let auto = tool_grammar(&tools, ToolMode::Auto, false).unwrap();
        let bare = r#"{"name": "set_light", "arguments": {"on": true}}"#;
        let tagged = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        let two = format!("[{bare}, {bare}]");
        for ok in [bare, tagged, two.as_str()] {
            assert!(accepts(&required, ok), "{ok}");
        }
        assert!(!accepts(&required, "It is noon."));
        assert!(!accepts(
            &required,
            r#"{"name": "open_door", "arguments": {}}"#
        ));
        assert!(accepts(&auto, "It is noon."));
        assert!(accepts(&auto, bare));
        assert!(!accepts(&auto, &two), "one call only when not parallel");
        assert!(!accepts(&auto, " {"));

        assert_eq!(
            parse_tool_calls(bare).unwrap(),
            vec![("set_light".to_owned(), json!({"on": true}))]
        );
        assert_eq!(parse_tool_calls(tagged).unwrap()[0].0, "get_time");
        assert_eq!(parse_tool_calls(&two).unwrap().len(), 2);
        assert_eq!(parse_tool_calls("It is noon."), None);
    }
}
