//! Semantic checks of `[canary]`: where the data canary lives, how large it
//! is, how often it is re-read, and after which step it is written.
//!
//! The canary is the guard's view of the data itself (the incident's drive
//! wrote zeros for 15 minutes while every counter looked fine). Its size must
//! suit O_DIRECT reads: a whole number of 4 KiB blocks.

use std::time::Duration;

use toml::Spanned;

use crate::runbook::ctx::Ctx;
use crate::runbook::model::{CanaryRule, Step};
use crate::runbook::raw::RawCanary;
use crate::runbook::values::{Params, duration};
use crate::runbook::vars::{NewBinding, Scope, template};
use crate::units::parse_size;

/// Default canary size: 1 MiB, a few milliseconds to re-read.
pub const DEFAULT_SIZE: u64 = 1 << 20;
/// Largest canary: re-read every second, it must stay cheap.
pub const MAX_SIZE: u64 = 64 << 20;
/// O_DIRECT needs whole logical blocks; 4 KiB covers every drive.
pub const BLOCK: u64 = 4096;
/// Default re-read interval during watches.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn build(
    ctx: &mut Ctx,
    raw: Option<&Spanned<RawCanary>>,
    params: &Params,
    steps: &[Step],
) -> Option<CanaryRule> {
    let raw_canary = raw?;
    let table = raw_canary.span();
    let raw = raw_canary.get_ref();
    let scope = Scope {
        params: &params.list,
        params_known: params.known,
        new: NewBinding::BeforeSteps,
    };
    let dir = match &raw.path {
        Some(path) => {
            let t = template(ctx, path, &scope);
            if !(t.text.starts_with('/') || t.text.starts_with('{')) {
                ctx.error(
                    path.span(),
                    format!("canary `path` `{}` is not absolute", t.text),
                    Some(
                        "name a directory on the guarded filesystem, e.g. `path = \"/srv/db\"`"
                            .into(),
                    ),
                );
                None
            } else {
                Some(t)
            }
        }
        None => {
            if !ctx.is_broken(&table, "path") {
                ctx.error(
                    &table,
                    "`[canary]` has no `path`",
                    Some("name a directory on the array's filesystem, e.g. `path = \"/srv/db\"`; the canary file is written there".into()),
                );
            }
            None
        }
    };
    let size = match &raw.size {
        None => Some(DEFAULT_SIZE),
        Some(value) => match parse_size(value.get_ref()) {
            Ok(n) if n == 0 || n % BLOCK != 0 || n > MAX_SIZE => {
                ctx.error(
                    value.span(),
                    format!("canary size must be a whole number of 4 KiB blocks, at most 64 MiB; `{}` is {n} bytes", value.get_ref()),
                    Some("e.g. `size = \"1Mi\"` (the default)".into()),
                );
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                ctx.error(value.span(), format!("{e:#}"), None);
                None
            }
        },
    };
    let every = match &raw.every {
        None => Some(DEFAULT_EVERY),
        Some(value) => {
            let every = duration(ctx, value, "every");
            if let Some(d) = every
                && d > Duration::from_secs(10)
            {
                ctx.warn(
                    value.span(),
                    format!(
                        "the canary is re-read only every {} during watches",
                        humantime::format_duration(d)
                    ),
                    Some("zeros written by a dying drive must be seen within seconds; keep `every` at 10s or less (default 1s)".into()),
                );
            }
            every
        }
    };
    let after = match &raw.after {
        None => Some(None),
        Some(id) => {
            if steps.iter().any(|s| &s.id == id.get_ref()) {
                Some(Some(id.get_ref().clone()))
            } else {
                let ids: Vec<String> = steps.iter().map(|s| format!("`{}`", s.id)).collect();
                ctx.error(
                    id.span(),
                    format!("canary `after` names no step: `{}`", id.get_ref()),
                    Some(format!("steps are {}", ids.join(", "))),
                );
                None
            }
        }
    };
    Some(CanaryRule {
        dir: dir?,
        size: size?,
        every: every?,
        after: after?,
    })
}
