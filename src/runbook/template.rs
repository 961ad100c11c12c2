//! `{variable}` templates in runbook strings.
//!
//! Variables come from the live array (`{target.serial}`, `{target.slot}`)
//! and from parameters (`{array}`); `{{` and `}}` stand for literal braces.
//! The linter uses [`variables`] to point at undefined names; the engine uses
//! [`render`] once the array has bound them.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// Fields every drive variable has: `{target.dev}` (`/dev/sdb`),
/// `{target.name}` (`sdb`), `{new.serial}`, `{new.serial4}` (its last four
/// characters), `{target.size}` (bytes), `{target.slot}` (bay, or a plain
/// "unknown" notice that names the serial instead).
pub const DRIVE_FIELDS: [&str; 8] = [
    "dev", "name", "serial", "serial4", "wwn", "model", "size", "slot",
];

/// A variable reference found in a template: its name and byte offset of the
/// name (after the `{`) within the template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    pub offset: usize,
}

/// Every `{name}` in `text`, or an error message with the offset of a brace
/// that is not closed or not escaped.
pub fn variables(text: &str) -> Result<Vec<VarRef>, (usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if bytes.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                let Some(len) = text[i + 1..].find('}') else {
                    return Err((
                        i,
                        "`{` is never closed; write `{{` for a literal brace".into(),
                    ));
                };
                let name = &text[i + 1..i + 1 + len];
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                {
                    return Err((i, format!("`{{{name}}}` is not a variable name")));
                }
                out.push(VarRef {
                    name: name.to_string(),
                    offset: i + 1,
                });
                i += len + 2;
            }
            b'}' => return Err((i, "unmatched `}`; write `}}` for a literal brace".into())),
            _ => i += 1,
        }
    }
    Ok(out)
}

/// Values bound to variable names for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Substitute every variable in `text`. An unbound variable is an error,
/// never an empty string: a command must not run with a hole in its argv.
pub fn render(text: &str, vars: &Vars) -> Result<String> {
    let refs = match variables(text) {
        Ok(refs) => refs,
        Err((_, message)) => bail!("in `{text}`: {message}"),
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for var in refs {
        let open = var.offset - 1;
        out.push_str(&unescape(&text[last..open]));
        match vars.get(&var.name) {
            Some(value) => out.push_str(value),
            None => bail!("variable `{{{}}}` is not bound yet", var.name),
        }
        last = var.offset + var.name.len() + 1;
    }
    out.push_str(&unescape(&text[last..]));
    Ok(out)
}

fn unescape(s: &str) -> String {
    s.replace("{{", "{").replace("}}", "}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_with_offsets() {
        let refs = variables("pull {target.dev} from {{bay}} {array}").unwrap();
        let names: Vec<_> = refs.iter().map(|r| (r.name.as_str(), r.offset)).collect();
        assert_eq!(names, [("target.dev", 6), ("array", 32)]);
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        for (text, at) in [("a {b", 2), ("a } b", 2), ("{}", 0), ("{a b}", 0)] {
            assert_eq!(variables(text).unwrap_err().0, at, "{text}");
        }
    }

    #[test]
    fn renders_and_unescapes() {
        let mut vars = Vars::new();
        vars.set("array", "md0");
        vars.set("target.dev", "/dev/sdb");
        assert_eq!(
            render("mdadm /dev/{array} --fail {target.dev} {{x}}", &vars).unwrap(),
            "mdadm /dev/md0 --fail /dev/sdb {x}"
        );
    }

    #[test]
    fn unbound_variable_is_an_error() {
        let err = render("{new.dev}", &Vars::new()).unwrap_err();
        assert!(
            err.to_string().contains("`{new.dev}` is not bound"),
            "{err}"
        );
    }
}
