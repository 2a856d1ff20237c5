//! n8n expressions, as far as the fake n8n evaluates them.
//!
//! A parameter whose string starts with `=` is an expression: literal text with `{{ ... }}`
//! pieces of JavaScript. `={{ x }}` alone is the value of `x` itself; anything else is a
//! string, each piece's value rendered as n8n renders it (objects as JSON). A parameter
//! without the `=` is taken literally, braces and all, as n8n takes it.
//!
//! The JavaScript is a subset, parsed and evaluated here so that the fake needs no JS
//! engine: literals (numbers, strings, `true`, `false`, `null`, `undefined`), object and
//! array literals, member access (`.x`, `[e]`, `?.`), calls of the few functions templates
//! use (`JSON.stringify`, `JSON.parse`, `String`, `Number`, `Boolean`, string methods,
//! `$input.first()`, `$('Node').item`), arithmetic, comparison, `!`, `&&`, `||`, `??` and
//! `? :`. The identifiers are `$json`, `$input`, `$`, `JSON`, `String`, `Number`, `Boolean`,
//! `$execution`, `$workflow` and, in a Code node, `items`. Anything else is an
//! [`ExprError`], and the node that used it fails: the fake never pretends it ran what it
//! could not.
//!
//! Hand-written rather than an embedded JS engine: a JS engine would cost the simulator a C
//! build (QuickJS) or minutes of compile time (Boa) for the dozen forms templates use, and
//! the fake's job is to refuse what it does not understand, not to run arbitrary code.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError(m.into()))
}

/// What an expression can see.
pub trait Scope {
    /// `$json` (the current item's JSON), and `$input.item.json`.
    fn json(&self) -> Value;
    /// `$input.all()`: the node's input items' JSON.
    fn input(&self) -> Vec<Value>;
    /// The output items' JSON of an earlier node, `$('Name')`, if it ran.
    fn node_output(&self, name: &str) -> Option<Vec<Value>>;
    /// The current item's index (which of `$('Name')`'s items `.item` is).
    fn item_index(&self) -> usize;
    /// `$execution.id`.
    fn execution_id(&self) -> String;
    /// `$workflow.id`.
    fn workflow_id(&self) -> String;
}

/// A JavaScript value as far as the subset goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Js {
    /// `undefined`.
    Undefined,
    /// Any JSON value.
    Json(Value),
    /// A built-in object or a bound method (not a value a template can keep).
    Builtin(Builtin),
}

/// The built-ins.
#[derive(Debug, Clone, PartialEq)]
pub enum Builtin {
    /// `JSON`.
    JsonObject,
    /// `$input`.
    Input,
    /// `$`: a function of a node name.
    NodeFn,
    /// `$('Name')`.
    Node(String),
    /// `String`, `Number`, `Boolean`.
    Convert(&'static str),
    /// A method bound to its receiver.
    Method(Box<Js>, String),
}

impl Js {
    fn json(v: Value) -> Js {
        Js::Json(v)
    }

    fn truthy(&self) -> bool {
        match self {
            Js::Undefined => false,
            Js::Builtin(_) => true,
            Js::Json(v) => match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
                Value::String(s) => !s.is_empty(),
                Value::Array(_) | Value::Object(_) => true,
            },
        }
    }

    fn nullish(&self) -> bool {
        matches!(self, Js::Undefined | Js::Json(Value::Null))
    }

    /// The value as JSON (undefined becomes null).
    pub fn into_json(self) -> Value {
        match self {
            Js::Json(v) => v,
            _ => Value::Null,
        }
    }

    fn number(&self) -> f64 {
        match self {
            Js::Undefined | Js::Builtin(_) => f64::NAN,
            Js::Json(v) => match v {
                Value::Null => 0.0,
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                Value::String(s) => {
                    let t = s.trim();
                    if t.is_empty() {
                        0.0
                    } else {
                        t.parse().unwrap_or(f64::NAN)
                    }
                }
                _ => f64::NAN,
            },
        }
    }

    /// JavaScript's `String(x)`, with objects as JSON (as n8n renders them in text).
    pub fn to_text(&self) -> String {
        match self {
            Js::Undefined => "undefined".into(),
            Js::Builtin(_) => "[function]".into(),
            Js::Json(v) => match v {
                Value::String(s) => s.clone(),
                Value::Null => "null".into(),
                Value::Number(n) => number_text(n),
                other => other.to_string(),
            },
        }
    }
}

fn number_text(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

/// A JavaScript number as JSON: integral values as integers, as `JSON.stringify` writes them.
pub(crate) fn num(f: f64) -> Js {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        Js::json(Value::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Js::json(Value::Null), |n| Js::json(Value::Number(n)))
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Punct(&'static str),
}

const PUNCT: [&str; 28] = [
    "===", "!==", "?.", "??", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}",
    ".", ",", ":", "?", "+", "-", "*", "/", "%", "<", ">", "!",
];

fn lex(src: &str) -> Result<Vec<Tok>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ';' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse()
                    .map_err(|_| ExprError(format!("not a number: {text}")))?,
            ));
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return err("an unterminated string");
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' {
                    let Some(&e) = chars.get(i) else {
                        return err("an unterminated string");
                    };
                    i += 1;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                } else {
                    s.push(ch);
                }
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
        match PUNCT.iter().find(|p| rest.starts_with(**p)) {
            // `?.` followed by a digit is a ternary and a number, as in JavaScript.
            Some(&"?.") if chars.get(i + 2).is_some_and(char::is_ascii_digit) => {
                out.push(Tok::Punct("?"));
                i += 1;
            }
            Some(p) => {
                out.push(Tok::Punct(p));
                i += p.len();
            }
            None => return err(format!("the fake n8n does not understand {c:?}")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Syntax

#[derive(Debug, Clone)]
enum Expr {
    Lit(Js),
    Ident(String),
    Object(Vec<(String, Expr)>),
    Array(Vec<Expr>),
    Member(Box<Expr>, Box<Expr>, bool),
    Call(Box<Expr>, Vec<Expr>),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek() == Some(&Tok::Punct(punct(p))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), ExprError> {
        if self.eat(p) {
            Ok(())
        } else {
            err(format!("expected {p:?}"))
        }
    }

    fn expression(&mut self) -> Result<Expr, ExprError> {
        let cond = self.binary(0)?;
        if self.eat("?") {
            let yes = self.expression()?;
            self.expect(":")?;
            let no = self.expression()?;
            return Ok(Expr::Cond(Box::new(cond), Box::new(yes), Box::new(no)));
        }
        Ok(cond)
    }

    fn binary(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while let Some(Tok::Punct(op)) = self.peek().cloned() {
            let Some(prec) = precedence(op) else { break };
            if prec < min {
                break;
            }
            self.pos += 1;
            let right = self.binary(prec + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        for op in ["!", "-", "+"] {
            if self.eat(op) {
                return Ok(Expr::Unary(punct(op), Box::new(self.unary()?)));
            }
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") || self.eat("?.") {
                let optional = self.toks.get(self.pos - 1) == Some(&Tok::Punct("?."));
                if optional && self.eat("[") {
                    let key = self.expression()?;
                    self.expect("]")?;
                    e = Expr::Member(Box::new(e), Box::new(key), true);
                    continue;
                }
                match self.next() {
                    Some(Tok::Ident(name)) => {
                        e = Expr::Member(
                            Box::new(e),
                            Box::new(Expr::Lit(Js::json(Value::String(name)))),
                            optional,
                        )
                    }
                    _ => return err("expected a property name after '.'"),
                }
            } else if self.eat("[") {
                let key = self.expression()?;
                self.expect("]")?;
                e = Expr::Member(Box::new(e), Box::new(key), false);
            } else if self.eat("(") {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.expression()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                e = Expr::Call(Box::new(e), args);
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Lit(num(n))),
            Some(Tok::Str(s)) => Ok(Expr::Lit(Js::json(Value::String(s)))),
            Some(Tok::Ident(id)) => Ok(match id.as_str() {
                "true" => Expr::Lit(Js::json(Value::Bool(true))),
                "false" => Expr::Lit(Js::json(Value::Bool(false))),
                "null" => Expr::Lit(Js::json(Value::Null)),
                "undefined" => Expr::Lit(Js::Undefined),
                _ => Expr::Ident(id),
            }),
            Some(Tok::Punct("(")) => {
                let e = self.expression()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Punct("[")) => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.expression()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::Array(items))
            }
            Some(Tok::Punct("{")) => {
                let mut fields = Vec::new();
                if !self.eat("}") {
                    loop {
                        let key = match self.next() {
                            Some(Tok::Ident(k) | Tok::Str(k)) => k,
                            _ => return err("expected a property name in an object literal"),
                        };
                        let value = if self.eat(":") {
                            self.expression()?
                        } else {
                            Expr::Ident(key.clone())
                        };
                        fields.push((key, value));
                        if self.eat("}") {
                            break;
                        }
                        self.expect(",")?;
                        if self.eat("}") {
                            break;
                        }
                    }
                }
                Ok(Expr::Object(fields))
            }
            Some(t) => err(format!("the fake n8n does not understand {t:?} here")),
            None => err("the expression ends too early"),
        }
    }
}

fn punct(p: &str) -> &'static str {
    PUNCT.iter().find(|q| **q == p).copied().unwrap_or("?")
}

fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "??" => 1,
        "||" => 2,
        "&&" => 3,
        "==" | "!=" | "===" | "!==" => 4,
        "<" | "<=" | ">" | ">=" => 5,
        "+" | "-" => 6,
        "*" | "/" | "%" => 7,
        _ => return None,
    })
}

/// Parses one JavaScript expression of the subset.
fn parse(src: &str) -> Result<Expr, ExprError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let e = p.expression()?;
    if p.pos != p.toks.len() {
        return err(format!(
            "the fake n8n does not understand the expression {:?}",
            src.trim()
        ));
    }
    Ok(e)
}

// ---------------------------------------------------------------------------------------
// Evaluation

struct Eval<'a> {
    scope: &'a dyn Scope,
    locals: &'a BTreeMap<String, Value>,
}

fn items_of(values: Vec<Value>) -> Value {
    Value::Array(
        values
            .into_iter()
            .map(|j| Value::Object(Map::from_iter([("json".to_owned(), j)])))
            .collect(),
    )
}

/// JavaScript's `JSON.stringify` of a JSON value (no undefined left inside).
fn stringify(v: &Js, indent: Option<usize>) -> Js {
    match v {
        Js::Json(v) => Js::json(Value::String(match indent {
            Some(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => v.to_string(),
        })),
        _ => Js::Undefined,
    }
}

impl Eval<'_> {
    fn eval(&self, e: &Expr) -> Result<Js, ExprError> {
        match e {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Ident(id) => self.ident(id),
            Expr::Object(fields) => {
                let mut m = Map::new();
                for (k, v) in fields {
                    // JavaScript's JSON.stringify drops undefined members; so do we, at once.
                    if let Js::Json(v) = self.eval(v)? {
                        m.insert(k.clone(), v);
                    }
                }
                Ok(Js::json(Value::Object(m)))
            }
            Expr::Array(items) => Ok(Js::json(Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i).map(Js::into_json))
                    .collect::<Result<_, _>>()?,
            ))),
            Expr::Member(obj, key, optional) => {
                let obj = self.eval(obj)?;
                if *optional && obj.nullish() {
                    return Ok(Js::Undefined);
                }
                let key = self.eval(key)?;
                self.member(obj, &key)
            }
            Expr::Call(f, args) => {
                let f = self.eval(f)?;
                let args = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                self.call(f, args)
            }
            Expr::Unary(op, v) => {
                let v = self.eval(v)?;
                Ok(match *op {
                    "!" => Js::json(Value::Bool(!v.truthy())),
                    "-" => num(-v.number()),
                    _ => num(v.number()),
                })
            }
            Expr::Binary(op, l, r) => {
                let l = self.eval(l)?;
                match *op {
                    "&&" => return if l.truthy() { self.eval(r) } else { Ok(l) },
                    "||" => return if l.truthy() { Ok(l) } else { self.eval(r) },
                    "??" => return if l.nullish() { self.eval(r) } else { Ok(l) },
                    _ => {}
                }
                let r = self.eval(r)?;
                Ok(binary(op, &l, &r))
            }
            Expr::Cond(c, y, n) => {
                if self.eval(c)?.truthy() {
                    self.eval(y)
                } else {
                    self.eval(n)
                }
            }
        }
    }

    fn ident(&self, id: &str) -> Result<Js, ExprError> {
        if let Some(v) = self.locals.get(id) {
            return Ok(Js::json(v.clone()));
        }
        Ok(match id {
            "$json" => Js::json(self.scope.json()),
            "$input" => Js::Builtin(Builtin::Input),
            "$" => Js::Builtin(Builtin::NodeFn),
            "JSON" => Js::Builtin(Builtin::JsonObject),
            "String" => Js::Builtin(Builtin::Convert("String")),
            "Number" => Js::Builtin(Builtin::Convert("Number")),
            "Boolean" => Js::Builtin(Builtin::Convert("Boolean")),
            "$execution" => {
                Js::json(serde_json::json!({"id": self.scope.execution_id(), "mode": "production"}))
            }
            "$workflow" => {
                Js::json(serde_json::json!({"id": self.scope.workflow_id(), "active": true}))
            }
            other => {
                return err(format!(
                    "the fake n8n does not know {other} (it knows $json, $input, $(), JSON, String, Number, Boolean, $execution, $workflow)"
                ));
            }
        })
    }

    fn member(&self, obj: Js, key: &Js) -> Result<Js, ExprError> {
        let name = key.to_text();
        match obj {
            Js::Undefined => err(format!(
                "Cannot read properties of undefined (reading '{name}')"
            )),
            Js::Json(Value::Null) => {
                err(format!("Cannot read properties of null (reading '{name}')"))
            }
            Js::Json(Value::Object(m)) => Ok(m.get(&name).cloned().map_or(Js::Undefined, Js::json)),
            Js::Json(Value::Array(a)) => {
                if name == "length" {
                    return Ok(Js::json(Value::from(a.len())));
                }
                if let Ok(i) = name.parse::<usize>() {
                    return Ok(a.get(i).cloned().map_or(Js::Undefined, Js::json));
                }
                Ok(Js::Builtin(Builtin::Method(
                    Box::new(Js::json(Value::Array(a))),
                    name,
                )))
            }
            Js::Json(Value::String(s)) => {
                if name == "length" {
                    return Ok(Js::json(Value::from(s.chars().count())));
                }
                Ok(Js::Builtin(Builtin::Method(
                    Box::new(Js::json(Value::String(s))),
                    name,
                )))
            }
            Js::Json(_) => Ok(Js::Undefined),
            Js::Builtin(b) => match (&b, name.as_str()) {
                (Builtin::Input, "item") => {
                    Ok(Js::json(serde_json::json!({"json": self.scope.json()})))
                }
                (Builtin::Node(n), "item") => {
                    let out = self.node(n)?;
                    let i = self.scope.item_index().min(out.len().saturating_sub(1));
                    Ok(out
                        .get(i)
                        .cloned()
                        .map_or(Js::Undefined, |j| Js::json(serde_json::json!({"json": j}))))
                }
                (Builtin::Input | Builtin::Node(_) | Builtin::JsonObject, _) => {
                    Ok(Js::Builtin(Builtin::Method(Box::new(Js::Builtin(b)), name)))
                }
                _ => err(format!("the fake n8n does not know .{name} here")),
            },
        }
    }

    fn node(&self, name: &str) -> Result<Vec<Value>, ExprError> {
        self.scope.node_output(name).ok_or_else(|| {
            ExprError(format!(
                "Referenced node is unexecuted: node '{name}' has not run in this execution"
            ))
        })
    }

    fn call(&self, f: Js, args: Vec<Js>) -> Result<Js, ExprError> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Js::Undefined);
        let Js::Builtin(b) = f else {
            return err("that is not a function");
        };
        match b {
            Builtin::NodeFn => Ok(Js::Builtin(Builtin::Node(arg(0).to_text()))),
            Builtin::Convert("String") => Ok(Js::json(Value::String(arg(0).to_text()))),
            Builtin::Convert("Number") => Ok(num(arg(0).number())),
            Builtin::Convert(_) => Ok(Js::json(Value::Bool(arg(0).truthy()))),
            Builtin::Method(recv, name) => self.method(*recv, &name, &args),
            _ => err("that is not a function"),
        }
    }

    fn method(&self, recv: Js, name: &str, args: &[Js]) -> Result<Js, ExprError> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Js::Undefined);
        let items = |values: Vec<Value>, which: &str| -> Js {
            match which {
                "all" => Js::json(items_of(values)),
                "first" => values
                    .first()
                    .cloned()
                    .map_or(Js::Undefined, |j| Js::json(serde_json::json!({"json": j}))),
                _ => values
                    .last()
                    .cloned()
                    .map_or(Js::Undefined, |j| Js::json(serde_json::json!({"json": j}))),
            }
        };
        match (&recv, name) {
            (Js::Builtin(Builtin::JsonObject), "stringify") => {
                let indent = args.get(2).map(|a| a.number()).filter(|n| *n > 0.0);
                Ok(stringify(&arg(0), indent.map(|n| n as usize)))
            }
            (Js::Builtin(Builtin::JsonObject), "parse") => serde_json::from_str(&arg(0).to_text())
                .map(Js::json)
                .map_err(|e| ExprError(format!("JSON.parse: {e}"))),
            (Js::Builtin(Builtin::Input), "all" | "first" | "last") => {
                Ok(items(self.scope.input(), name))
            }
            (Js::Builtin(Builtin::Node(n)), "all" | "first" | "last") => {
                Ok(items(self.node(n)?, name))
            }
            (Js::Json(Value::String(s)), _) => string_method(s, name, args),
            (Js::Json(Value::Array(a)), "join") => {
                let sep = match arg(0) {
                    Js::Undefined => ",".to_owned(),
                    s => s.to_text(),
                };
                Ok(Js::json(Value::String(
                    a.iter()
                        .map(|v| match v {
                            Value::Null => String::new(),
                            other => Js::json(other.clone()).to_text(),
                        })
                        .collect::<Vec<_>>()
                        .join(&sep),
                )))
            }
            (Js::Json(Value::Array(a)), "includes") => {
                Ok(Js::json(Value::Bool(a.contains(&arg(0).into_json()))))
            }
            _ => err(format!("the fake n8n does not know the method {name}()")),
        }
    }
}

fn string_method(s: &str, name: &str, args: &[Js]) -> Result<Js, ExprError> {
    let text = |i: usize| args.get(i).map(Js::to_text).unwrap_or_default();
    let string = |v: String| Ok(Js::json(Value::String(v)));
    let boolean = |b: bool| Ok(Js::json(Value::Bool(b)));
    match name {
        "toLowerCase" => string(s.to_lowercase()),
        "toUpperCase" => string(s.to_uppercase()),
        "trim" => string(s.trim().to_owned()),
        "includes" => boolean(s.contains(&text(0))),
        "startsWith" => boolean(s.starts_with(&text(0))),
        "endsWith" => boolean(s.ends_with(&text(0))),
        "replace" => string(s.replacen(&text(0), &text(1), 1)),
        "replaceAll" => string(s.replace(&text(0), &text(1))),
        "split" => Ok(Js::json(Value::Array(
            s.split(&text(0))
                .map(|p| Value::String(p.to_owned()))
                .collect(),
        ))),
        "toString" => string(s.to_owned()),
        other => err(format!(
            "the fake n8n does not know the string method {other}()"
        )),
    }
}

fn loose_eq(l: &Js, r: &Js) -> bool {
    match (l, r) {
        (a, b) if a.nullish() && b.nullish() => true,
        (a, b) if a.nullish() || b.nullish() => false,
        (Js::Json(Value::Number(_)), _) | (_, Js::Json(Value::Number(_))) => {
            l.number() == r.number()
        }
        (Js::Json(Value::Bool(_)), _) | (_, Js::Json(Value::Bool(_))) => l.number() == r.number(),
        _ => l == r,
    }
}

fn binary(op: &str, l: &Js, r: &Js) -> Js {
    let boolean = |b: bool| Js::json(Value::Bool(b));
    match op {
        "===" => boolean(l == r),
        "!==" => boolean(l != r),
        "==" => boolean(loose_eq(l, r)),
        "!=" => boolean(!loose_eq(l, r)),
        "+" => match (l, r) {
            (Js::Json(Value::String(_)), _)
            | (_, Js::Json(Value::String(_)))
            | (Js::Json(Value::Object(_) | Value::Array(_)), _)
            | (_, Js::Json(Value::Object(_) | Value::Array(_))) => {
                Js::json(Value::String(format!("{}{}", l.to_text(), r.to_text())))
            }
            _ => num(l.number() + r.number()),
        },
        "-" => num(l.number() - r.number()),
        "*" => num(l.number() * r.number()),
        "/" => num(l.number() / r.number()),
        "%" => num(l.number() % r.number()),
        cmp => {
            let ord = match (l, r) {
                (Js::Json(Value::String(a)), Js::Json(Value::String(b))) => a.partial_cmp(b),
                _ => l.number().partial_cmp(&r.number()),
            };
            boolean(match (cmp, ord) {
                (_, None) => false,
                ("<", Some(o)) => o.is_lt(),
                ("<=", Some(o)) => o.is_le(),
                (">", Some(o)) => o.is_gt(),
                (_, Some(o)) => o.is_ge(),
            })
        }
    }
}

/// Evaluates the JavaScript expression `src` in `scope`, with extra names in `locals` (a
/// Code node's `items`).
pub fn evaluate(
    src: &str,
    scope: &dyn Scope,
    locals: &BTreeMap<String, Value>,
) -> Result<Js, ExprError> {
    let e = parse(src)?;
    Eval { scope, locals }.eval(&e)
}

/// Resolves one node parameter: an `=` string is an expression (see the module doc), any
/// other value is itself; objects and arrays are resolved member by member.
pub fn resolve(param: &Value, scope: &dyn Scope) -> Result<Value, ExprError> {
    match param {
        Value::String(s) => match s.strip_prefix('=') {
            Some(template) => render(template, scope),
            None => Ok(param.clone()),
        },
        Value::Array(items) => items
            .iter()
            .map(|i| resolve(i, scope))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| resolve(v, scope).map(|v| (k.clone(), v)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

fn render(template: &str, scope: &dyn Scope) -> Result<Value, ExprError> {
    let none = BTreeMap::new();
    let trimmed = template.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{"))
    {
        return Ok(evaluate(inner, scope, &none)?.into_json());
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return err("an expression's {{ has no }}");
        };
        match evaluate(&after[..end], scope, &none)? {
            Js::Undefined => {}
            v => out.push_str(&v.to_text()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct S {
        json: Value,
        earlier: Option<Vec<Value>>,
    }

    impl Scope for S {
        fn json(&self) -> Value {
            self.json.clone()
        }
        fn input(&self) -> Vec<Value> {
            vec![self.json.clone(), json!({"n": 2})]
        }
        fn node_output(&self, name: &str) -> Option<Vec<Value>> {
            (name == "Lead webhook")
                .then(|| self.earlier.clone())
                .flatten()
        }
        fn item_index(&self) -> usize {
            0
        }
        fn execution_id(&self) -> String {
            "7".into()
        }
        fn workflow_id(&self) -> String {
            "w1".into()
        }
    }

    fn scope() -> S {
        S {
            json: json!({"headers": {"x-genesis-token": "t0k"}, "body": {"email": "ada@acme.example", "first_name": "Ada", "n": 3}}),
            earlier: Some(vec![json!({"body": {"email": "from@hook"}})]),
        }
    }

    fn eval(src: &str) -> Result<Value, ExprError> {
        resolve(&Value::String(src.into()), &scope())
    }

    #[test]
    fn the_golden_templates_expressions() {
        assert_eq!(
            eval(
                "={{ JSON.stringify({ leads: [{ email: $json.body.email, first_name: $json.body.first_name, last_name: $json.body.last_name }] }) }}"
            ),
            Ok(json!(
                r#"{"leads":[{"email":"ada@acme.example","first_name":"Ada"}]}"#
            )),
            "undefined members are dropped, as JSON.stringify drops them"
        );
        assert_eq!(
            eval("={{ $json.headers['x-genesis-token'] }}"),
            Ok(json!("t0k"))
        );
        assert_eq!(
            eval("=Hello {{ $json.body.first_name }}!"),
            Ok(json!("Hello Ada!"))
        );
        assert_eq!(
            eval("Hello {{ $json.body.first_name }}"),
            Ok(json!("Hello {{ $json.body.first_name }}")),
            "no = means literal"
        );
        assert_eq!(
            eval("={{ $json.body }}"),
            Ok(json!({"email": "ada@acme.example", "first_name": "Ada", "n": 3}))
        );
    }

    #[test]
    fn operators_methods_and_node_references() {
        assert_eq!(eval("={{ $json.body.n * 2 + 1 }}"), Ok(json!(7)));
        assert_eq!(
            eval("={{ $json.body.n > 2 ? 'big' : 'small' }}"),
            Ok(json!("big"))
        );
        assert_eq!(
            eval("={{ $json.body.missing ?? 'none' }}"),
            Ok(json!("none"))
        );
        assert_eq!(eval("={{ $json.body.missing?.deeper }}"), Ok(Value::Null));
        assert_eq!(
            eval("={{ $json.body.email.toUpperCase().startsWith('ADA') }}"),
            Ok(json!(true))
        );
        assert_eq!(
            eval("={{ $json.body.email.split('@')[1] }}"),
            Ok(json!("acme.example"))
        );
        assert_eq!(
            eval("={{ $('Lead webhook').item.json.body.email }}"),
            Ok(json!("from@hook"))
        );
        assert_eq!(
            eval("={{ $input.first().json.body.first_name }}"),
            Ok(json!("Ada"))
        );
        assert_eq!(eval("={{ $input.all().length }}"), Ok(json!(2)));
        assert_eq!(eval("={{ !$json.body.email }}"), Ok(json!(false)));
        assert_eq!(
            eval("={{ $json.body.n === 3 && $json.body.n == '3' }}"),
            Ok(json!(true))
        );
        assert_eq!(
            eval("={{ JSON.parse('{\"a\": [1, 2]}').a[1] }}"),
            Ok(json!(2))
        );
        assert_eq!(eval("={{ $execution.id }}"), Ok(json!("7")));
    }

    #[test]
    fn what_it_cannot_evaluate_is_an_error_not_a_guess() {
        for bad in [
            "={{ $json.body.email.normalize() }}",
            "={{ $now.toISO() }}",
            "={{ items.map(i => i.json) }}",
            "={{ $json.body.missing.deeper }}",
            "={{ $('Never ran').item.json }}",
            "={{ 1 + }}",
            "={{ $json.body.email",
        ] {
            assert!(eval(bad).is_err(), "{bad} should not evaluate");
        }
    }
}
