//! The subset of jinja that kerchunk reference files use, rendered exactly.
//!
//! Text outside `{{ ... }}` is copied. Inside, an expression is one of:
//! - an integer literal, or a string literal in `'...'` or `"..."`;
//! - a name: a generator dimension variable, or a template (its text, for a template without
//!   `{{`);
//! - a call of a template holding `{{` as a function, with keyword arguments only:
//!   `{{f(c='text', i=3)}}` renders that template with just those variables (as fsspec does);
//! - `+`, `-`, `*`, `//` (floor division), `%` (Python modulo) on integers, `+` on two strings,
//!   unary `-` and parentheses, with the usual precedence.
//!
//! Anything else (filters `|`, `/`, `{% %}` statements, attribute access...) is refused with a
//! reason rather than rendered differently from jinja.
//!
//! Reference files may be hostile, so rendering is bounded: no rendered string (a template's
//! output, a function call's result, a string sum) may exceed [`MAX_RENDERED_LEN`] bytes,
//! checked before the bytes are allocated; an expression may be at most
//! [`MAX_EXPRESSION_LEN`] bytes long and nest at most [`MAX_EXPRESSION_DEPTH`] levels
//! (parentheses, unary minus, call arguments).

use std::collections::BTreeMap;

/// Largest string, in bytes, that rendering may produce (a whole template's output, a template
/// function's result or a sum of strings). Keys and URLs are far shorter; the bound stops
/// nested template calls (`f(c=f(c=...))` with `f = "{{c}}{{c}}"`) from growing exponentially.
pub(crate) const MAX_RENDERED_LEN: usize = 64 * 1024;

/// Longest expression (the text between `{{` and `}}`), in bytes.
pub(crate) const MAX_EXPRESSION_LEN: usize = 16 * 1024;

/// Deepest nesting of an expression: parentheses, unary minus and template call arguments
/// each add a level. Bounds the parser's recursion, hence its stack use.
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 64;

/// A value of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplateValue {
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}

/// Appends `piece` to `out` unless that would make `out` longer than [`MAX_RENDERED_LEN`].
fn push_bounded(out: &mut String, piece: &str) -> Result<(), String> {
    if out.len().saturating_add(piece.len()) > MAX_RENDERED_LEN {
        return Err(too_long());
    }
    out.push_str(piece);
    Ok(())
}

fn too_long() -> String {
    format!("the rendered text would exceed the limit of {MAX_RENDERED_LEN} bytes")
}

/// The names an expression may use: the reference file's templates and the variables of one
/// generator iteration (which hide templates of the same name).
pub(crate) struct Scope<'a> {
    /// `templates` of the reference file: name → template text.
    pub(crate) templates: &'a BTreeMap<String, String>,
    /// Variables (generator dimensions, or a template function's keyword arguments).
    pub(crate) variables: &'a BTreeMap<String, TemplateValue>,
}

/// Renders `text`, replacing every `{{ expression }}`. Fails, among other reasons, when the
/// result would exceed [`MAX_RENDERED_LEN`] bytes or an expression exceeds
/// [`MAX_EXPRESSION_LEN`] bytes or [`MAX_EXPRESSION_DEPTH`] levels.
pub(crate) fn render(text: &str, scope: &Scope<'_>) -> Result<String, String> {
    render_nested(text, scope, 0)
}

/// [`render`] from within an expression already `depth` levels deep.
fn render_nested(text: &str, scope: &Scope<'_>, depth: usize) -> Result<String, String> {
    let shown = abbreviated(text);
    if text.contains("{%") || text.contains("{#") {
        return Err(format!(
            "`{shown}`: jinja statements and comments ({{% %}}, {{# #}}) are not supported"
        ));
    }
    let mut out = String::with_capacity(text.len().min(MAX_RENDERED_LEN));
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        push_bounded(&mut out, &rest[..start]).map_err(|e| format!("`{shown}`: {e}"))?;
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{shown}`: `{{{{` without a closing `}}}}`"))?;
        let value = evaluate(&after[..end], scope, depth).and_then(|value| match value {
            TemplateValue::Int(i) => push_bounded(&mut out, &i.to_string()),
            TemplateValue::Str(s) => push_bounded(&mut out, &s),
        });
        value.map_err(|e| format!("`{shown}`: {e}"))?;
        rest = &after[end + 2..];
    }
    push_bounded(&mut out, rest).map_err(|e| format!("`{shown}`: {e}"))?;
    Ok(out)
}

/// `text` for messages: its first 200 characters.
fn abbreviated(text: &str) -> String {
    const SHOWN: usize = 200;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Evaluates one expression (the text between `{{` and `}}`), `depth` levels deep already.
fn evaluate(expression: &str, scope: &Scope<'_>, depth: usize) -> Result<TemplateValue, String> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "the expression is {} bytes long, more than the limit of {MAX_EXPRESSION_LEN}",
            expression.len()
        ));
    }
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        depth,
        scope,
    };
    let value = parser.sum()?;
    if parser.at != tokens.len() {
        return Err(format!(
            "unexpected {:?} in expression `{}`",
            tokens[parser.at],
            expression.trim()
        ));
    }
    Ok(value)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Int(i64),
    Str(String),
    Name(String),
    Op(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let value = digits
                .parse()
                .map_err(|_| format!("integer `{digits}` is too large"))?;
            tokens.push(Token::Int(value));
        } else if c == '\'' || c == '"' {
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    return Err("escapes in string literals are not supported".into());
                }
                i += 1;
            }
            if i == chars.len() {
                return Err("unterminated string literal".into());
            }
            tokens.push(Token::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = match (two.as_str(), c) {
                ("//", _) => "//",
                (_, '+') => "+",
                (_, '-') => "-",
                (_, '*') => "*",
                (_, '%') => "%",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                (_, '=') => "=",
                (_, '/') => return Err(
                    "`/` gives a float in jinja, which kerchunk cannot use as an offset: use `//`"
                        .into(),
                ),
                (_, other) => return Err(format!("`{other}` is not supported")),
            };
            i += op.len();
            tokens.push(Token::Op(op));
        }
    }
    Ok(tokens)
}

struct Parser<'t, 's> {
    tokens: &'t [Token],
    at: usize,
    /// Current nesting of the expression, at most [`MAX_EXPRESSION_DEPTH`].
    depth: usize,
    scope: &'t Scope<'s>,
}

impl Parser<'_, '_> {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.peek_op() == Some(op) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected `{op}`"))
        }
    }

    fn sum(&mut self) -> Result<TemplateValue, String> {
        let mut left = self.product()?;
        while let Some(op @ ("+" | "-")) = self.peek_op() {
            self.at += 1;
            let right = self.product()?;
            left = arithmetic(op, left, right)?;
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<TemplateValue, String> {
        let mut left = self.unary()?;
        while let Some(op @ ("*" | "//" | "%")) = self.peek_op() {
            self.at += 1;
            let right = self.unary()?;
            left = arithmetic(op, left, right)?;
        }
        Ok(left)
    }

    /// Every recursion of the parser passes here: the nesting bound is enforced once.
    fn unary(&mut self) -> Result<TemplateValue, String> {
        if self.depth >= MAX_EXPRESSION_DEPTH {
            return Err(format!(
                "the expression nests deeper than the limit of {MAX_EXPRESSION_DEPTH} levels"
            ));
        }
        self.depth += 1;
        let value = if self.peek_op() == Some("-") {
            self.at += 1;
            self.unary()
                .and_then(|operand| arithmetic("-", TemplateValue::Int(0), operand))
        } else {
            self.primary()
        };
        self.depth -= 1;
        value
    }

    fn primary(&mut self) -> Result<TemplateValue, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("the expression ends too early")?;
        self.at += 1;
        match token {
            Token::Int(i) => Ok(TemplateValue::Int(i)),
            Token::Str(s) => Ok(TemplateValue::Str(s)),
            Token::Op("(") => {
                let value = self.sum()?;
                self.expect_op(")")?;
                Ok(value)
            }
            Token::Op(op) => Err(format!("unexpected `{op}`")),
            Token::Name(name) if self.peek_op() == Some("(") => {
                self.at += 1;
                self.call(&name)
            }
            Token::Name(name) => self.lookup(&name),
        }
    }

    fn lookup(&self, name: &str) -> Result<TemplateValue, String> {
        if let Some(value) = self.scope.variables.get(name) {
            return Ok(value.clone());
        }
        match self.scope.templates.get(name) {
            Some(text) if text.contains("{{") => Err(format!(
                "template `{name}` is a function: call it with keyword arguments, e.g. `{name}(x='...')`"
            )),
            Some(text) => Ok(TemplateValue::Str(text.clone())),
            None => Err(format!("undefined name `{name}`")),
        }
    }

    fn call(&mut self, name: &str) -> Result<TemplateValue, String> {
        let mut arguments = BTreeMap::new();
        if self.peek_op() != Some(")") {
            loop {
                let Some(Token::Name(key)) = self.tokens.get(self.at).cloned() else {
                    return Err(format!(
                        "template `{name}` takes keyword arguments only (`name=value`)"
                    ));
                };
                self.at += 1;
                self.expect_op("=")?;
                let value = self.sum()?;
                arguments.insert(key, value);
                if self.peek_op() == Some(",") {
                    self.at += 1;
                } else {
                    break;
                }
            }
        }
        self.expect_op(")")?;
        let text = self
            .scope
            .templates
            .get(name)
            .ok_or_else(|| format!("undefined template `{name}`"))?;
        if !text.contains("{{") {
            return Err(format!(
                "template `{name}` is plain text, not a function: use `{{{{{name}}}}}`"
            ));
        }
        // As in fsspec, a template function sees only its keyword arguments.
        let empty = BTreeMap::new();
        let inner = Scope {
            templates: &empty,
            variables: &arguments,
        };
        render_nested(text, &inner, self.depth).map(TemplateValue::Str)
    }
}

fn arithmetic(
    op: &str,
    left: TemplateValue,
    right: TemplateValue,
) -> Result<TemplateValue, String> {
    use TemplateValue::{Int, Str};
    let overflow = || format!("integer overflow in `{op}`");
    match (left, right) {
        (Str(a), Str(b)) if op == "+" => {
            if a.len().saturating_add(b.len()) > MAX_RENDERED_LEN {
                return Err(too_long());
            }
            Ok(Str(a + &b))
        }
        (Int(a), Int(b)) => {
            let value = match op {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                "*" => a.checked_mul(b),
                "//" | "%" if b == 0 => return Err("division by zero".into()),
                // Python semantics: floor division, modulo with the divisor's sign.
                "//" => a.checked_div_euclid(b).map(|q| {
                    if b < 0 && a.rem_euclid(b) != 0 {
                        q - 1
                    } else {
                        q
                    }
                }),
                "%" => a
                    .checked_rem_euclid(b)
                    .map(|r| if b < 0 && r != 0 { r + b } else { r }),
                _ => None,
            };
            value.map(Int).ok_or_else(overflow)
        }
        (a, b) => Err(format!(
            "`{op}` does not apply to {} and {}",
            kind(&a),
            kind(&b)
        )),
    }
}

fn kind(value: &TemplateValue) -> &'static str {
    match value {
        TemplateValue::Int(_) => "an integer",
        TemplateValue::Str(_) => "a string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope_render(text: &str, templates: &[(&str, &str)], vars: &[(&str, i64)]) -> String {
        let templates: BTreeMap<String, String> = templates
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let variables: BTreeMap<String, TemplateValue> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), TemplateValue::Int(*v)))
            .collect();
        render(
            text,
            &Scope {
                templates: &templates,
                variables: &variables,
            },
        )
        .unwrap()
    }

    fn fails(text: &str) -> String {
        let templates = BTreeMap::from([("f".to_string(), "x{{c}}".to_string())]);
        let variables = BTreeMap::new();
        render(
            text,
            &Scope {
                templates: &templates,
                variables: &variables,
            },
        )
        .unwrap_err()
    }

    #[test]
    fn names_calls_and_arithmetic_render_like_jinja() {
        let t = [("u", "s3://b/data"), ("f", "s3://b/{{c}}/file_{{n}}.nc")];
        assert_eq!(scope_render("{{u}}/x.nc", &t, &[]), "s3://b/data/x.nc");
        assert_eq!(scope_render("{{ u }}", &t, &[]), "s3://b/data");
        assert_eq!(
            scope_render("{{f(c='dir', n=7)}}", &t, &[]),
            "s3://b/dir/file_7.nc"
        );
        assert_eq!(
            scope_render("{{f(c=\"d\" + 'e', n=i * 2)}}", &t, &[("i", 4)]),
            "s3://b/de/file_8.nc"
        );
        let v = [("i", 3), ("j", -7)];
        assert_eq!(scope_render("{{(i + 1) * 1000}}", &t, &v), "4000");
        assert_eq!(scope_render("{{i * 16 + 2 * 3 - 1}}", &t, &v), "53");
        assert_eq!(scope_render("{{-i}}", &t, &v), "-3");
        assert_eq!(scope_render("{{j // 2}},{{j % 2}}", &t, &v), "-4,1");
        assert_eq!(scope_render("{{7 // -2}},{{7 % -2}}", &t, &v), "-4,-1");
        assert_eq!(scope_render("k/{{i}}.{{j}}", &t, &v), "k/3.-7");
        assert_eq!(scope_render("no templates", &t, &v), "no templates");
    }

    #[test]
    fn unsupported_forms_are_refused() {
        assert!(fails("{{x}}").contains("undefined name"));
        assert!(fails("{{ 1 / 2 }}").contains("use `//`"));
        assert!(fails("{{ 'a' | upper }}").contains("not supported"));
        assert!(fails("{% if x %}").contains("statements"));
        assert!(fails("{{ 1 + 'a' }}").contains("does not apply"));
        assert!(fails("{{ 1 // 0 }}").contains("division by zero"));
        assert!(fails("{{ f }}").contains("is a function"));
        assert!(fails("{{ f(1) }}").contains("keyword arguments"));
        assert!(fails("{{ 1 + }}").contains("ends too early"));
        assert!(fails("{{ 1 2 }}").contains("unexpected"));
        assert!(fails("{{ 1").contains("without a closing"));
        assert!(fails("{{ 99999999999999999999 }}").contains("too large"));
    }

    fn render_with(text: &str, templates: &[(&str, &str)]) -> Result<String, String> {
        let templates: BTreeMap<String, String> = templates
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let variables = BTreeMap::new();
        render(
            text,
            &Scope {
                templates: &templates,
                variables: &variables,
            },
        )
    }

    #[test]
    fn nested_calls_cannot_grow_the_output_beyond_the_limit() {
        // Each call doubles its argument: at depth 40 this would be 1 TiB.
        let doubling = [("f", "{{c}}{{c}}")];
        let mut expression = "'x'".to_string();
        for _ in 0..40 {
            expression = format!("f(c={expression})");
        }
        let err = render_with(&format!("{{{{{expression}}}}}"), &doubling).unwrap_err();
        assert!(
            err.contains(&format!("limit of {MAX_RENDERED_LEN} bytes")),
            "{err}"
        );
        // Up to the limit, nested calls render exactly.
        let mut expression = "'x'".to_string();
        for _ in 0..16 {
            expression = format!("f(c={expression})");
        }
        let rendered = render_with(&format!("{{{{{expression}}}}}"), &doubling).unwrap();
        assert_eq!(rendered, "x".repeat(1 << 16));
        // One more byte of literal text around it is over the limit.
        let err = render_with(&format!("y{{{{{expression}}}}}"), &doubling).unwrap_err();
        assert!(err.contains("limit of"), "{err}");
        // String sums are bounded too.
        let mut sum = "f(c='x')".to_string();
        for _ in 0..20 {
            sum = format!("f(c={sum} + {sum})");
        }
        assert!(render_with(&format!("{{{{{sum}}}}}"), &[("f", "{{c}}")]).is_err());
    }

    #[test]
    fn deep_nesting_and_long_expressions_are_refused_without_overflowing_the_stack() {
        let deep_parentheses = format!("{{{{{}1{}}}}}", "(".repeat(200_000), ")".repeat(200_000));
        let err = render_with(&deep_parentheses, &[]).unwrap_err();
        assert!(
            err.contains(&format!("limit of {MAX_EXPRESSION_LEN}")),
            "{err}"
        );
        let minus_run = format!("{{{{{}1}}}}", "-".repeat(10_000));
        let err = render_with(&minus_run, &[]).unwrap_err();
        assert!(
            err.contains(&format!("limit of {MAX_EXPRESSION_DEPTH} levels")),
            "{err}"
        );
        let nested = format!("{{{{{}1{}}}}}", "(".repeat(100), ")".repeat(100));
        let err = render_with(&nested, &[]).unwrap_err();
        assert!(err.contains("levels"), "{err}");
        let mut calls = "'x'".to_string();
        for _ in 0..100 {
            calls = format!("f(c={calls})");
        }
        let err = render_with(&format!("{{{{{calls}}}}}"), &[("f", "{{c}}")]).unwrap_err();
        assert!(err.contains("levels"), "{err}");
        // Nesting within the limit still works.
        let fine = format!("{{{{{}-7{}}}}}", "(-".repeat(20), ")".repeat(20));
        assert_eq!(render_with(&fine, &[]).unwrap(), "-7");
    }
}
