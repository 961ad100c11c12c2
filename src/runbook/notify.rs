//! Semantic checks of `[notify]`: the webhook a runbook's sessions tell of
//! their start, halt, refusal, interruption and finish (`crate::notify`).
//! The rules are the notify module's own (shared with the host-wide default
//! in `config.toml`); this file only points at the key that breaks one.

use toml::Spanned;

use crate::notify::host::{parse_format, parse_kind, parse_retries, parse_timeout};
use crate::notify::{DEFAULT_RETRIES, DEFAULT_TIMEOUT, Format, KINDS, Settings, check_url};
use crate::runbook::ctx::Ctx;
use crate::runbook::raw::RawNotify;

pub(crate) fn build(ctx: &mut Ctx, raw: Option<&Spanned<RawNotify>>) -> Option<Settings> {
    let raw_notify = raw?;
    let table = raw_notify.span();
    let raw = raw_notify.get_ref();
    let url = match &raw.url {
        Some(url) => match check_url(url.get_ref()) {
            Ok(()) => Some(url.get_ref().clone()),
            Err(e) => {
                ctx.error(
                    url.span(),
                    e,
                    Some("e.g. `url = \"http://alertmanager:9093/api/v2/alerts\"`".into()),
                );
                None
            }
        },
        None => {
            if !ctx.is_broken(&table, "url") {
                ctx.error(
                    &table,
                    "`[notify]` has no `url`",
                    Some(
                        "name the webhook, e.g. `url = \"http://alertmanager:9093/api/v2/alerts\"`"
                            .into(),
                    ),
                );
            }
            None
        }
    };
    let mut ok = true;
    let mut check = |ctx: &mut Ctx, span: std::ops::Range<usize>, r: Result<(), String>| {
        if let Err(e) = r {
            ctx.error(span, e, None);
            ok = false;
        }
    };
    let mut format = Format::Generic;
    if let Some(f) = &raw.format {
        check(ctx, f.span(), parse_format(f.get_ref()).map(|v| format = v));
    }
    let mut events: Vec<_> = KINDS.iter().map(|(_, k)| *k).collect();
    if let Some(list) = &raw.events {
        events.clear();
        for e in list.get_ref() {
            check(
                ctx,
                e.span(),
                parse_kind(e.get_ref()).map(|k| events.push(k)),
            );
        }
    }
    let mut timeout = DEFAULT_TIMEOUT;
    if let Some(t) = &raw.timeout {
        check(
            ctx,
            t.span(),
            parse_timeout(t.get_ref()).map(|v| timeout = v),
        );
    }
    let mut retries = DEFAULT_RETRIES;
    if let Some(n) = &raw.retries {
        check(
            ctx,
            n.span(),
            parse_retries(*n.get_ref()).map(|v| retries = v),
        );
    }
    let dry_runs = raw.dry_runs.as_ref().is_some_and(|b| *b.get_ref());
    if !ok {
        return None;
    }
    Some(Settings {
        url: url?,
        format,
        events,
        timeout,
        retries,
        dry_runs,
    })
}
