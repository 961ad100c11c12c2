//! Value helpers every runbook check shares: one of a fixed set of words,
//! a duration, a non-empty string, "did you mean" for a near miss, and the
//! declared parameters.
//!
//! Like `ctx.rs`, this file uses no check of `runbook/`, so every check may
//! use it without an import loop.

use std::time::Duration;

use crate::runbook::ctx::Ctx;
use crate::runbook::model::Param;
use crate::runbook::raw::Str;

/// One of a fixed set of words, with "did you mean" for a near miss.
pub(crate) fn choice<T: Copy>(
    ctx: &mut Ctx,
    value: &Str,
    what: &str,
    options: &[(&str, T)],
) -> Option<T> {
    let text = value.get_ref().as_str();
    if let Some((_, found)) = options.iter().find(|(name, _)| *name == text) {
        return Some(*found);
    }
    let names = options.iter().map(|(name, _)| *name);
    let help = match suggest(text, names.clone()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("expected one of {}", quoted_list(names)),
    };
    ctx.error(value.span(), format!("unknown {what} `{text}`"), Some(help));
    None
}

/// A humantime duration such as `250ms`, `10s` or `24h`, more than zero.
pub(crate) fn duration(ctx: &mut Ctx, value: &Str, key: &str) -> Option<Duration> {
    let text = value.get_ref().trim();
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => {
            ctx.error(
                value.span(),
                format!("`{key}` must be longer than zero"),
                None,
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(
                value.span(),
                format!("`{text}` is not a duration: {e}"),
                Some("write a number and a unit, e.g. `250ms`, `10s`, `24h`".into()),
            );
            None
        }
    }
}

/// A string that must not be empty once trimmed.
pub(crate) fn non_empty(ctx: &mut Ctx, value: &Str, key: &str) -> Option<String> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        ctx.error(value.span(), format!("`{key}` is empty"), None);
        None
    } else {
        Some(text.to_string())
    }
}

/// The params, and whether there was a `[params]` table to read them from
/// (without one, every variable would be undefined; that is one error, not
/// one per variable).
pub(crate) struct Params {
    pub list: Vec<Param>,
    pub known: bool,
}

/// A string value's line breaks as `\n`. A runbook saved with CRLF line
/// endings keeps `\r\n` inside its multi-line strings (TOML leaves newline
/// normalisation to the parser); shown as written, each `\r` would print as
/// a stray character at the end of every line of a `say`.
pub(crate) fn unix_newlines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// The candidate closest to `word`, when it is close enough to be a slip
/// (one edit, or two in a longer word; case and `-`/`_` do not count).
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let word = norm(word);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word, &norm(c)), c))
        .filter(|(distance, c)| {
            *distance <= 1 || (*distance == 2 && word.chars().count() >= 5 && c.len() >= 5)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `` `a`, `b`, `c` `` for help texts.
pub(crate) fn quoted_list<'c>(items: impl IntoIterator<Item = &'c str>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let keys = [
            "smart",
            "smart_poll",
            "watch_poll",
            "tolerate",
            "halt_on",
            "max_degraded",
        ];
        let cases = [
            ("smrt", Some("smart")),
            ("Smart", Some("smart")),
            ("smart-poll", Some("smart_poll")),
            ("watch_pol", Some("watch_poll")),
            ("tolerat", Some("tolerate")),
            ("maxdegraded", Some("max_degraded")),
            ("xyz", None),
            ("on", None),
        ];
        for (word, want) in cases {
            assert_eq!(suggest(word, keys), want, "{word}");
        }
    }
}
