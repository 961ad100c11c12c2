//! Where the `{variable}` placeholders of a runbook string are.
//!
//! Only the syntax: `{name}` is a variable, `{{` and `}}` are literal
//! braces. Rendering (`template.rs`) and the shell-line checks (`shell.rs`)
//! both build on it, so it sits below them both and uses neither.

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
