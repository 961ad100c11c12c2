//! Tests of the loader: one table row per rule, each an edit of a small
//! valid runbook and the exact diagnostics it must produce.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::runbook::diag::Severity::{self, Error as E, Warning as W};
use crate::runbook::model::{CheckTest, Confirm, DriveExpect, Role, StepKind};

/// A valid runbook with no warnings; every case below edits it.
const BASE: &str = r#"[runbook]
name = "t"
backend = "md"

[params]
array = { kind = "array", help = "a" }
target = { kind = "member", help = "t" }

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "stop"

[[step]]
id = "fail"
kind = "command"
run = ["mdadm", "/dev/{array}", "--fail", "{target.dev}"]
expect = { target = "faulty" }

[[step]]
id = "pull"
kind = "physical"
say = "Pull bay {target.slot}."
expect = { target = "absent" }
quarantine = "target"

[[step]]
id = "insert"
kind = "physical"
say = "Insert."
expect = { new = "present" }
new = { min_size = "{target.size}" }

[[step]]
id = "add"
kind = "command"
run = ["mdadm", "/dev/{array}", "--add", "{new.dev}"]
confirm = "type-serial"
expect = { new = "rebuilding" }
"#;

const MEMBER: &str = include_str!("../../runbooks/md-replace-member.toml");
const HOT: &str = include_str!("../../runbooks/md-replace-hot.toml");
const RESTORE: &str = include_str!("../../runbooks/restore-from-backup.toml");

/// 1-based line and column of the `|` in `needle`, found in `source` (the
/// needle without its `|`; the start of the needle when it has none).
fn position(source: &str, needle: &str) -> (usize, usize) {
    let (before, after) = needle.split_once('|').unwrap_or(("", needle));
    let whole = format!("{before}{after}");
    let at = source
        .find(&whole)
        .unwrap_or_else(|| panic!("needle {whole:?} not in source:\n{source}"))
        + before.len();
    let line = source[..at].matches('\n').count() + 1;
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, source[line_start..at].chars().count() + 1)
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

fn render(loaded: &Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n\n")
}

type Want<'a> = (Severity, &'a str, &'a str, &'a str);

/// Assert the exact diagnostics of `source`: severity, position of the
/// needle, a piece of the message and a piece of the help.
fn assert_diagnostics(name: &str, source: &str, want: &[Want]) {
    let loaded = load_str(Path::new("t.toml"), source);
    let shown = render(&loaded);
    assert_eq!(
        loaded.diagnostics.len(),
        want.len(),
        "{name}: wrong number of diagnostics:\n{shown}"
    );
    for (got, (severity, needle, message, help)) in loaded.diagnostics.iter().zip(want) {
        assert_eq!(got.severity, *severity, "{name}: {got}");
        assert_eq!(
            (got.line, got.column),
            position(source, needle),
            "{name}: position of {got}"
        );
        assert!(got.message.contains(message), "{name}: message of {got}");
        let got_help = got.help.as_deref().unwrap_or("");
        assert!(got_help.contains(help), "{name}: help of {got}");
    }
    let has_error = want.iter().any(|(s, ..)| *s == E);
    assert_eq!(
        loaded.runbook.is_none(),
        has_error,
        "{name}: model presence"
    );
}

#[test]
fn base_is_clean() {
    assert_diagnostics("base", BASE, &[]);
}

#[test]
fn shipped_runbooks_have_no_errors_and_no_warnings() {
    for (name, source) in [("member", MEMBER), ("hot", HOT), ("restore", RESTORE)] {
        assert_diagnostics(name, source, &[]);
    }
}

#[test]
fn key_rules() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "misspelt guard key",
            "[on_halt]",
            "[guard]\nsmrt = \"required\"\n\n[on_halt]",
            &[(
                E,
                "|smrt",
                "unknown key `smrt` in [guard]",
                "did you mean `smart`?",
            )],
        ),
        (
            "unknown key lists the valid ones",
            "say = \"stop\"",
            "say = \"stop\"\nwhen = \"always\"",
            &[(
                E,
                "|when",
                "unknown key `when` in [on_halt]",
                "valid keys here: `say`",
            )],
        ),
        (
            "unknown key at the top level",
            "[runbook]\n",
            "colour = \"red\"\n[runbook]\n",
            &[(
                E,
                "|colour",
                "unknown key `colour` at the top level",
                "`runbook`, `params`",
            )],
        ),
        (
            "unknown key in an inline table",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\", degradd = 1 }",
            &[(
                E,
                "|degradd",
                "unknown key `degradd` in `expect` of step `fail`",
                "did you mean `degraded`?",
            )],
        ),
        (
            "unknown key in a param",
            "help = \"t\" }",
            "help = \"t\", of = \"array\" }",
            &[(
                E,
                "|of = ",
                "unknown key `of` in param `target`",
                "`kind`, `help`",
            )],
        ),
        (
            "unknown key in a step",
            "quarantine = \"target\"",
            "quarantine = \"target\"\ntimout = \"1h\"",
            &[(
                E,
                "|timout",
                "unknown key `timout` in step `pull`",
                "did you mean `timeout`?",
            )],
        ),
        (
            "unknown key in new-drive rules",
            "new = { min_size = \"{target.size}\" }",
            "new = { min_size = \"{target.size}\", blnk = true }",
            &[(
                E,
                "|blnk",
                "unknown key `blnk` in `new` of step `insert`",
                "did you mean `blank`?",
            )],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn section_rules() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "missing name",
            "name = \"t\"\n",
            "",
            &[(E, "|[runbook]", "`[runbook]` has no `name`", "add `name")],
        ),
        (
            "empty name",
            "name = \"t\"",
            "name = \" \"",
            &[(E, "name = |\" \"", "`name` is empty", "")],
        ),
        (
            "backend near miss",
            "backend = \"md\"",
            "backend = \"mdd\"",
            &[(
                E,
                "backend = |\"mdd\"",
                "unknown backend `mdd`",
                "did you mean `md`?",
            )],
        ),
        (
            "backend unknown",
            "backend = \"md\"",
            "backend = \"lvm\"",
            &[(
                E,
                "backend = |\"lvm\"",
                "unknown backend `lvm`",
                "expected one of `md`, `btrfs`, `zfs`, `megaraid`",
            )],
        ),
        (
            "sim is not a backend",
            "backend = \"md\"",
            "backend = \"sim\"",
            &[(
                E,
                "backend = |\"sim\"",
                "`sim` is not a runbook backend",
                "a dry run",
            )],
        ),
        (
            "param kind near miss",
            "kind = \"member\"",
            "kind = \"membr\"",
            &[(
                E,
                "|\"membr\"",
                "unknown param kind `membr`",
                "did you mean `member`?",
            )],
        ),
        (
            "param without help warns",
            "target = { kind = \"member\", help = \"t\" }",
            "target = { kind = \"member\" }",
            &[(
                W,
                "|target = {",
                "param `target` has no `help`",
                "technician",
            )],
        ),
        (
            "param named new",
            "target = { kind = \"member\", help = \"t\" }",
            "target = { kind = \"member\", help = \"t\" }\nnew = { kind = \"text\", help = \"n\" }",
            &[(E, "|new = { kind", "`new` cannot be a param", "")],
        ),
        (
            "param name with capitals",
            "array = {",
            "Array = {",
            &[
                (E, "|Array", "`Array` is not a param name", "lowercase"),
                (
                    E,
                    "/dev/{|array}\", \"--fail",
                    "undefined variable `{array}`",
                    "did you mean `{Array}`?",
                ),
                (
                    E,
                    "/dev/{|array}\", \"--add",
                    "undefined variable `{array}`",
                    "did you mean `{Array}`?",
                ),
            ],
        ),
        (
            "target must be a member",
            "target = { kind = \"member\"",
            "target = { kind = \"text\"",
            &[
                (
                    E,
                    "|target = {",
                    "param `target` must be of kind `member`",
                    "",
                ),
                (
                    E,
                    "{|target.dev}",
                    "`target` is a `text` param, not a drive",
                    "write `{target}`",
                ),
                (E, "{|target.slot}", "`target` is a `text` param", ""),
                (E, "{|target.size}", "`target` is a `text` param", ""),
            ],
        ),
        (
            "guard: watch_poll over a second warns",
            "[on_halt]",
            "[guard]\nwatch_poll = \"2s\"\n\n[on_halt]",
            &[(
                W,
                "watch_poll = |\"2s\"",
                "the guard is loosened: counters polled every 2s",
                "about a second",
            )],
        ),
        (
            "guard: slow SMART poll warns",
            "[on_halt]",
            "[guard]\nsmart_poll = \"1m\"\n\n[on_halt]",
            &[(W, "smart_poll = |\"1m\"", "SMART polled every 1m", "")],
        ),
        (
            "guard: optional SMART warns",
            "[on_halt]",
            "[guard]\nsmart = \"optional\"\n\n[on_halt]",
            &[(
                W,
                "smart = |\"optional\"",
                "SMART that cannot be read will not halt",
                "",
            )],
        ),
        (
            "guard: SMART setting near miss",
            "[on_halt]",
            "[guard]\nsmart = \"requird\"\n\n[on_halt]",
            &[(
                E,
                "smart = |\"requird\"",
                "unknown SMART requirement `requird`",
                "did you mean `required`?",
            )],
        ),
        (
            "guard: tolerating a counter warns",
            "[on_halt]",
            "[guard]\ntolerate = [\"smart.udma_crc_error_count\"]\n\n[on_halt]",
            &[(
                W,
                "tolerate = [|\"smart",
                "a rise of `smart.udma_crc_error_count` on a survivor will not halt",
                "",
            )],
        ),
        (
            "guard: accepting a survivor condition warns",
            "[on_halt]",
            "[guard]\naccept_survivor = [\"nvme.media_errors\"]\n\n[on_halt]",
            &[(
                W,
                "accept_survivor = [|\"nvme",
                "a survivor with `nvme.media_errors` (NVMe unrecovered media and data integrity errors) is not refused",
                "",
            )],
        ),
        (
            "guard: an unknown survivor condition is an error with a near miss",
            "[on_halt]",
            "[guard]\naccept_survivor = [\"nvme.media_error\"]\n\n[on_halt]",
            &[(
                E,
                "accept_survivor = [|\"nvme",
                "`nvme.media_error` is not a survivor condition",
                "did you mean `nvme.media_errors`?",
            )],
        ),
        (
            "guard: an unknown survivor condition lists the known ones",
            "[on_halt]",
            "[guard]\naccept_survivor = [\"everything\"]\n\n[on_halt]",
            &[(
                E,
                "accept_survivor = [|\"every",
                "`everything` is not a survivor condition",
                "`smart.overall_health`",
            )],
        ),
        (
            "guard: a counter name needs a source",
            "[on_halt]",
            "[guard]\ntolerate = [\"crc\"]\n\n[on_halt]",
            &[(
                E,
                "tolerate = [|\"crc\"",
                "`crc` is not a counter name",
                "`<source>.<name>`",
            )],
        ),
        (
            "guard: lint_fails_open_on_counter_names: misspelt halt_on counter",
            "[on_halt]",
            "[guard]\nhalt_on = [\"smart.udma_crc_eror_count\"]\n\n[on_halt]",
            &[(
                E,
                "halt_on = [|\"smart",
                "unknown counter in `halt_on`: `smart.udma_crc_eror_count`",
                "did you mean `smart.udma_crc_error_count`?",
            )],
        ),
        (
            "guard: lint_fails_open_on_counter_names: misspelt tolerate counter",
            "[on_halt]",
            "[guard]\ntolerate = [\"md.erors\"]\n\n[on_halt]",
            &[(
                E,
                "tolerate = [|\"md",
                "unknown counter in `tolerate`: `md.erors`",
                "did you mean `md.errors`?",
            )],
        ),
        (
            "guard: lint_fails_open_on_counter_names: unknown counter lists the known ones",
            "[on_halt]",
            "[guard]\nhalt_on = [\"zfs.checksum\"]\n\n[on_halt]",
            &[(
                E,
                "halt_on = [|\"zfs",
                "unknown counter in `halt_on`: `zfs.checksum`",
                "`md.errors`",
            )],
        ),
        (
            "guard: lint_fails_open_on_counter_names: halt_on name without a source",
            "[on_halt]",
            "[guard]\nhalt_on = [\"udma_crc_error_count\"]\n\n[on_halt]",
            &[(
                E,
                "halt_on = [|\"udma",
                "`udma_crc_error_count` is not a counter name",
                "`<source>.<name>`",
            )],
        ),
        (
            "guard: every counter a backend produces is accepted",
            "[on_halt]",
            "[guard]\nhalt_on = [\"kernel.io_errors\", \"nvme.media_errors\", \"io.ioerr_cnt\"]\n\n[on_halt]",
            &[
                (
                    W,
                    "[|\"kernel",
                    "a rise of `kernel.io_errors` already halts",
                    "",
                ),
                (
                    W,
                    ", |\"nvme.media",
                    "a rise of `nvme.media_errors` already halts",
                    "",
                ),
                (
                    W,
                    ", |\"io.ioerr",
                    "a rise of `io.ioerr_cnt` already halts",
                    "",
                ),
            ],
        ),
        (
            "guard: bad duration",
            "[on_halt]",
            "[guard]\nsmart_poll = \"10 parsecs\"\n\n[on_halt]",
            &[(
                E,
                "smart_poll = |\"10",
                "`10 parsecs` is not a duration",
                "`250ms`",
            )],
        ),
        (
            "guard: zero duration",
            "[on_halt]",
            "[guard]\nwatch_poll = \"0s\"\n\n[on_halt]",
            &[(
                E,
                "watch_poll = |\"0s\"",
                "`watch_poll` must be longer than zero",
                "",
            )],
        ),
        (
            "guard: max_degraded of the wrong type",
            "[on_halt]",
            "[guard]\nmax_degraded = \"one\"\n\n[on_halt]",
            &[(
                E,
                "max_degraded = |\"one\"",
                "invalid type: string \"one\", expected a whole number",
                "",
            )],
        ),
        (
            "preflight: unknown precondition, no extra warning",
            "\"no-rebuild-running\"",
            "\"no-rebuild-runing\"",
            &[(
                E,
                "|\"no-rebuild-runing\"",
                "unknown precondition `no-rebuild-runing`",
                "did you mean `no-rebuild-running`?",
            )],
        ),
        (
            "preflight: a missing precondition warns",
            ", \"target-identified\"]",
            "]",
            &[(
                W,
                "require = |[",
                "preflight does not require `target-identified`",
                "without it",
            )],
        ),
        (
            "preflight: a precondition twice warns",
            ", \"target-identified\"]",
            ", \"target-identified\", \"survivors-healthy\"]",
            &[(
                W,
                "\"target-identified\", |\"survivors-healthy\"]",
                "`survivors-healthy` is listed twice",
                "",
            )],
        ),
        (
            "on_halt: missing warns",
            "[on_halt]\nsay = \"stop\"\n",
            "",
            &[(W, "|[runbook]", "no `[on_halt] say`", "")],
        ),
        (
            "on_halt: variables are not filled in",
            "say = \"stop\"",
            "say = \"stop, bay {target.slot}\"",
            &[(
                W,
                "say = |\"stop",
                "`[on_halt] say` is printed as written",
                "",
            )],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn preflight_check_rules() {
    let check = "[on_halt]";
    let with = |body: &str| format!("[[preflight.check]]\n{body}\n\n[on_halt]");
    let cases: &[(&str, String, &[Want])] = &[
        (
            "max_age check is fine",
            with(
                "name = \"backup\"\nrun = [\"restic\", \"snapshots\", \"--json\"]\njson = { pointer = \"/0/time\", max_age = \"24h\" }",
            ),
            &[],
        ),
        (
            "both tests",
            with(
                "name = \"backup\"\nrun = [\"restic\"]\njson = { pointer = \"/0/time\", max_age = \"24h\", equals = 1 }",
            ),
            &[(
                E,
                "equals = |1",
                "`json` has both `max_age` and `equals`",
                "",
            )],
        ),
        (
            "neither test",
            with("name = \"backup\"\nrun = [\"restic\"]\njson = { pointer = \"/0/time\" }"),
            &[(
                E,
                "json = |{ pointer",
                "`json` has no test",
                "only tests the exit status",
            )],
        ),
        (
            "not a pointer",
            with(
                "name = \"backup\"\nrun = [\"restic\"]\njson = { pointer = \"0/time\", equals = 1 }",
            ),
            &[(
                E,
                "pointer = |\"0/time\"",
                "`0/time` is not a JSON pointer",
                "starts with `/`",
            )],
        ),
        (
            "a check must only read",
            with("name = \"wipe\"\nrun = [\"wipefs\", \"-a\", \"/dev/sdz\"]"),
            &[(
                E,
                "run = [|\"wipefs\"",
                "check `wipe` runs a command that writes",
                "must only read",
            )],
        ),
        (
            "a shell in a check warns",
            with("name = \"sh\"\nrun = [\"sh\", \"-c\", \"true\"]"),
            &[(
                W,
                "run = [|\"sh\"",
                "cannot tell whether check `sh` changes anything",
                "",
            )],
        ),
        (
            "no new drive before the steps",
            with("name = \"n\"\nrun = [\"smartctl\", \"{new.dev}\"]"),
            &[(
                E,
                "\"{|new.dev}\"",
                "`{new.dev}` cannot be used before the steps",
                "",
            )],
        ),
        (
            "a check needs a name and a run",
            with("timeout = \"5s\""),
            &[
                (E, "|[[preflight.check]]", "check has no `name`", ""),
                (
                    E,
                    "|[[preflight.check]]",
                    "check `check` has no `run`",
                    "argv",
                ),
            ],
        ),
        (
            "a single [preflight.check]",
            "[preflight.check]\nname = \"x\"\nrun = [\"true\"]\n\n[on_halt]".to_string(),
            &[(
                E,
                "|[preflight.check]",
                "`[preflight.check]` is a single table",
                "`[[preflight.check]]`",
            )],
        ),
    ];
    for (name, to, want) in cases {
        assert_diagnostics(name, &edit(check, to), want);
    }
}

#[test]
fn step_rules() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "duplicate step ids",
            "id = \"pull\"",
            "id = \"fail\"",
            &[(
                E,
                "id = |\"fail\"\nkind = \"physical\"",
                "duplicate step id `fail`",
                "first used on line 16",
            )],
        ),
        (
            "step id with spaces",
            "id = \"pull\"",
            "id = \"Pull it\"",
            &[(E, "|\"Pull it\"", "`Pull it` is not a step id", "lowercase")],
        ),
        (
            "step without id",
            "id = \"pull\"\n",
            "",
            &[(
                E,
                "|[[step]]\nkind = \"physical\"\nsay = \"Pull",
                "step number 2 has no `id`",
                "unique id",
            )],
        ),
        (
            "step without kind",
            "kind = \"physical\"\nsay = \"Pull",
            "say = \"Pull",
            &[(
                E,
                "|[[step]]\nid = \"pull\"",
                "step `pull` has no `kind`",
                "`confirm`, `command`",
            )],
        ),
        (
            "unknown kind",
            "kind = \"physical\"\nsay = \"Pull",
            "kind = \"phyiscal\"\nsay = \"Pull",
            &[(
                E,
                "kind = |\"phyiscal\"",
                "unknown step kind `phyiscal`",
                "did you mean `physical`?",
            )],
        ),
        (
            "physical step without expectation",
            "expect = { target = \"absent\" }\n",
            "",
            &[(
                E,
                "|[[step]]\nid = \"pull\"",
                "physical step `pull` has no expectation",
                "expect = {",
            )],
        ),
        (
            "physical step with an empty expectation",
            "expect = { target = \"absent\" }",
            "expect = {}",
            &[(
                E,
                "|[[step]]\nid = \"pull\"",
                "physical step `pull` has no expectation",
                "",
            )],
        ),
        (
            "physical step without say",
            "say = \"Pull bay {target.slot}.\"\n",
            "",
            &[(
                E,
                "|[[step]]\nid = \"pull\"",
                "step `pull` has no `say`",
                "tell the technician",
            )],
        ),
        (
            "run on a physical step",
            "quarantine = \"target\"",
            "quarantine = \"target\"\nrun = [\"true\"]",
            &[(
                E,
                "|run = [\"true\"]",
                "`run` does not apply to a physical step",
                "`run` is for command or check steps",
            )],
        ),
        (
            "command step without run",
            "run = [\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]\n",
            "",
            &[(
                E,
                "|[[step]]\nid = \"fail\"",
                "command step `fail` has no `run`",
                "run = [",
            )],
        ),
        (
            "empty run",
            "run = [\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]",
            "run = []",
            &[(E, "run = |[]", "`run` is empty", "")],
        ),
        (
            "wait step without until",
            "expect = { new = \"rebuilding\" }\n",
            "expect = { new = \"rebuilding\" }\n\n[[step]]\nid = \"rebuild\"\nkind = \"wait\"\ntimeout = \"24h\"\n",
            &[(
                E,
                "|[[step]]\nid = \"rebuild\"",
                "wait step `rebuild` has no `until`",
                "`until = \"in-sync\"`",
            )],
        ),
        (
            "wait step with an unknown condition",
            "expect = { new = \"rebuilding\" }\n",
            "expect = { new = \"rebuilding\" }\n\n[[step]]\nid = \"rebuild\"\nkind = \"wait\"\nuntil = \"synced\"\ntimeout = \"24h\"\n",
            &[(
                E,
                "until = |\"synced\"",
                "unknown wait condition `synced`",
                "`in-sync`",
            )],
        ),
        (
            "locate on new before the insert",
            "[[step]]\nid = \"insert\"",
            "[[step]]\nid = \"blink\"\nkind = \"locate\"\non = \"new\"\n\n[[step]]\nid = \"insert\"",
            &[(
                E,
                "on = |\"new\"",
                "`on = \"new\"` blinks the new drive's bay, but it is not known yet at step `blink`",
                "step `insert`",
            )],
        ),
        (
            "locate on new after the insert",
            "[[step]]\nid = \"add\"",
            "[[step]]\nid = \"blink\"\nkind = \"locate\"\non = \"new\"\noptional = true\n\n[[step]]\nid = \"add\"",
            &[],
        ),
        (
            "a confirm step takes no confirm key",
            "[[step]]\nid = \"fail\"",
            "[[step]]\nid = \"strap\"\nkind = \"confirm\"\nsay = \"Strap on.\"\nconfirm = \"yes-no\"\n\n[[step]]\nid = \"fail\"",
            &[(
                E,
                "|confirm = \"yes-no\"",
                "`confirm` does not apply to a confirm step",
                "command or physical steps",
            )],
        ),
        (
            "expectation near miss",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"fauly\" }",
            &[(
                E,
                "|\"fauly\"",
                "unknown expectation `fauly`",
                "did you mean `faulty`?",
            )],
        ),
        (
            "expecting the new drive before it is found",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\", new = \"rebuilding\" }",
            &[(
                E,
                "new = |\"rebuilding\" }\n\n[[step]]\nid = \"pull\"",
                "`expect` speaks of the new drive, but it is not known yet at step `fail`",
                "",
            )],
        ),
        (
            "a second new drive",
            "expect = { new = \"rebuilding\" }",
            "expect = { new = \"present\" }",
            &[(
                E,
                "confirm = \"type-serial\"\nexpect = { new = |\"present\" }",
                "step `add` expects a second new drive",
                "",
            )],
        ),
        (
            "degraded beyond max_degraded",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\", degraded = 1 }\n\n[guard]\nmax_degraded = 0",
            &[(
                E,
                "degraded = |1",
                "`degraded = 1` is more than `[guard] max_degraded = 0`",
                "",
            )],
        ),
        (
            "new-drive rules on a step that finds no drive",
            "quarantine = \"target\"",
            "quarantine = \"target\"\nnew = { blank = true }",
            &[(
                E,
                "|new = { blank",
                "`new` rules on step `pull`, which does not find the new drive",
                "",
            )],
        ),
        (
            "a loosened new-drive rule warns",
            "new = { min_size = \"{target.size}\" }",
            "new = { min_size = \"{target.size}\", blank = false }",
            &[(
                W,
                "blank = |false",
                "the new-drive check is loosened: `blank = false`",
                "written over",
            )],
        ),
        (
            "an unchecked size warns",
            "new = { min_size = \"{target.size}\" }",
            "new = { not_quarantined = true }",
            &[(
                W,
                "new = |{ not_quarantined",
                "the size of the drive inserted at step `insert` is not checked",
                "min_size",
            )],
        ),
        (
            "no new-drive rules at all warns about size only",
            "new = { min_size = \"{target.size}\" }\n",
            "",
            &[(W, "|[[step]]\nid = \"insert\"", "is not checked", "")],
        ),
        ("a literal size", "\"{target.size}\"", "\"1.92T\"", &[]),
        (
            "not a size",
            "\"{target.size}\"",
            "\"big\"",
            &[(E, "min_size = |\"big\"", "`big` is not a size", "`960G`")],
        ),
        (
            "a size from the new drive",
            "\"{target.size}\"",
            "\"{new.size}\"",
            &[(
                E,
                "\"{|new.size}\"",
                "`{new.size}` is not known yet at this step",
                "step `insert`",
            )],
        ),
        (
            "quarantine before the pull warns",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\" }\nquarantine = \"target\"",
            &[(
                W,
                "quarantine = |\"target\"\n\n[[step]]\nid = \"pull\"",
                "step `fail` quarantines the target before it is pulled",
                "",
            )],
        ),
        (
            "only the target is quarantined",
            "quarantine = \"target\"",
            "quarantine = \"new\"",
            &[
                (
                    W,
                    "target = |\"absent\"",
                    "the target is pulled in step `pull` but never quarantined",
                    "",
                ),
                (
                    E,
                    "quarantine = |\"new\"",
                    "only the target can be quarantined",
                    "",
                ),
            ],
        ),
        (
            "a pulled target never quarantined warns",
            "quarantine = \"target\"\n",
            "",
            &[(
                W,
                "target = |\"absent\"",
                "the target is pulled in step `pull` but never quarantined",
                "quarantine = \"target\"",
            )],
        ),
        (
            "bad timeout",
            "quarantine = \"target\"",
            "quarantine = \"target\"\ntimeout = \"forever\"",
            &[(
                E,
                "timeout = |\"forever\"",
                "`forever` is not a duration",
                "",
            )],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn variable_rules() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "unknown drive field, pointed at inside the string",
            "{target.slot}",
            "{target.bay}",
            &[(
                E,
                "say = \"Pull bay {|target.bay}",
                "a drive has no field `bay`",
                "drive fields: `dev`",
            )],
        ),
        (
            "drive field near miss",
            "{target.slot}",
            "{target.slto}",
            &[(
                E,
                "{|target.slto}",
                "a drive has no field `slto`",
                "did you mean `{target.slot}`?",
            )],
        ),
        (
            "unknown param",
            "\"/dev/{array}\", \"--fail\"",
            "\"/dev/{arry}\", \"--fail\"",
            &[(
                E,
                "/dev/{|arry}",
                "undefined variable `{arry}`",
                "did you mean `{array}`?",
            )],
        ),
        (
            "fields of a param that is not a drive",
            "\"/dev/{array}\", \"--fail\"",
            "\"/dev/{array.dev}\", \"--fail\"",
            &[(
                E,
                "/dev/{|array.dev}",
                "`array` is an `array` param, not a drive",
                "write `{array}`",
            )],
        ),
        (
            "the new drive before the insert",
            "\"--fail\", \"{target.dev}\"",
            "\"--fail\", \"{new.dev}\"",
            &[(
                E,
                "\"--fail\", \"{|new.dev}\"",
                "`{new.dev}` is not known yet at this step",
                "found by step `insert` (line 28)",
            )],
        ),
        (
            "the new drive in the step that finds it",
            "say = \"Insert.\"",
            "say = \"Insert {new.serial}.\"",
            &[(
                E,
                "Insert {|new.serial}",
                "`{new.serial}` is not known yet at this step",
                "step `insert`",
            )],
        ),
        (
            "the new drive when no step finds it",
            "expect = { new = \"present\" }",
            "expect = { target = \"absent\" }",
            &[
                (
                    E,
                    "|new = { min_size",
                    "`new` rules on step `insert`, which does not find the new drive",
                    "",
                ),
                (
                    E,
                    "\"--add\", \"{|new.dev}\"",
                    "`{new.dev}` is never known: no step expects `new = \"present\"`",
                    "",
                ),
                (
                    E,
                    "expect = { new = |\"rebuilding\"",
                    "`expect` speaks of the new drive, but it is not known yet",
                    "never found",
                ),
            ],
        ),
        (
            "a bare new",
            "expect = { new = \"rebuilding\" }\n",
            "expect = { new = \"rebuilding\" }\n\n[[step]]\nid = \"x\"\nkind = \"confirm\"\nsay = \"{new}\"\n",
            &[(
                E,
                "say = \"{|new}\"",
                "`{new}` is a drive, not a value",
                "`{new.serial}`",
            )],
        ),
        (
            "an unclosed brace",
            "{target.slot}",
            "{target.slot",
            &[(E, "Pull bay |{target.slot", "`{` is never closed", "")],
        ),
        (
            "a string with escapes points at its start",
            "say = \"Pull bay {target.slot}.\"",
            "say = \"Pull \\\"bay\\\" {target.bay}.\"",
            &[(E, "say = |\"Pull", "a drive has no field `bay`", "")],
        ),
        (
            "a literal string maps exactly",
            "say = \"Pull bay {target.slot}.\"",
            "say = 'Pull \"bay\" {target.bay}.'",
            &[(E, "{|target.bay}", "a drive has no field `bay`", "")],
        ),
        (
            "a multi-line string maps exactly",
            "say = \"Pull bay {target.slot}.\"",
            "say = \"\"\"\nPull the drive\nin bay {target.bay}.\"\"\"",
            &[(E, "in bay {|target.bay}", "a drive has no field `bay`", "")],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn confirmation_rules() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "destructive command without typed confirmation",
            "confirm = \"type-serial\"\n",
            "",
            &[(
                E,
                "\"/dev/{array}\", |\"--add\"",
                "`mdadm --add` overwrites the drive it adds, but step `add` has no typed confirmation",
                "add `confirm = \"type-serial\"`",
            )],
        ),
        (
            "a yes/no is not enough",
            "confirm = \"type-serial\"",
            "confirm = \"yes-no\"",
            &[(
                E,
                "|\"--add\"",
                "has no typed confirmation",
                "a yes/no is not enough",
            )],
        ),
        (
            "a wrapper cannot be judged",
            "[\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]",
            "[\"nice\", \"mdadm\", \"--fail\"]",
            &[(
                E,
                "run = [|\"nice\"",
                "cannot tell what step `fail` runs (`nice` runs another program)",
                "type-serial",
            )],
        ),
        (
            "wipefs that only lists is fine",
            "[\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]",
            "[\"wipefs\", \"--no-act\", \"{target.dev}\"]",
            &[],
        ),
        (
            "confirmation near miss",
            "confirm = \"type-serial\"",
            "confirm = \"type-serail\"",
            &[(
                E,
                "confirm = |\"type-serail\"",
                "unknown confirmation `type-serail`",
                "did you mean `type-serial`?",
            )],
        ),
        (
            "confirm_drive needs type-serial",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\" }\nconfirm = \"yes-no\"\nconfirm_drive = \"target\"",
            &[(
                E,
                "confirm_drive = |\"target\"",
                "`confirm_drive` needs `confirm = \"type-serial\"`",
                "",
            )],
        ),
        (
            "confirm_drive new before the insert",
            "expect = { target = \"faulty\" }",
            "expect = { target = \"faulty\" }\nconfirm = \"type-serial\"\nconfirm_drive = \"new\"",
            &[(
                E,
                "confirm_drive = |\"new\"",
                "`confirm_drive` asks for the new drive's serial, but it is not known yet",
                "",
            )],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn type_errors_are_all_reported_without_follow_ups() {
    let cases: &[(&str, &str, &str, &[Want])] = &[
        (
            "two type errors in one step",
            "quarantine = \"target\"",
            "quarantine = \"target\"\noptional = \"yes\"\ntimeout = 5",
            &[
                (
                    E,
                    "optional = |\"yes\"",
                    "invalid type: string \"yes\", expected a boolean",
                    "",
                ),
                (
                    E,
                    "timeout = |5",
                    "invalid type: integer `5`, expected a string",
                    "",
                ),
            ],
        ),
        (
            "an expectation that is not a table",
            "expect = { target = \"absent\" }",
            "expect = \"absent\"",
            &[(
                E,
                "expect = |\"absent\"",
                "invalid type: string \"absent\", expected a table",
                "",
            )],
        ),
        (
            "a number in an argv",
            "\"--fail\", \"{target.dev}\"]",
            "\"--fail\", 5]",
            &[(
                E,
                "\"--fail\", |5]",
                "invalid type: integer `5`, expected a string",
                "",
            )],
        ),
        (
            "a param that is not a table",
            "array = { kind = \"array\", help = \"a\" }",
            "array = \"md0\"",
            &[(
                E,
                "array = |\"md0\"",
                "invalid type: string \"md0\", expected a table",
                "",
            )],
        ),
        (
            "an id that is not a string",
            "id = \"pull\"",
            "id = 7",
            &[(
                E,
                "id = |7",
                "invalid type: integer `7`, expected a string",
                "",
            )],
        ),
    ];
    for (name, from, to, want) in cases {
        assert_diagnostics(name, &edit(from, to), want);
    }
}

#[test]
fn single_brackets_for_steps() {
    let first_step = BASE.find("[[step]]").unwrap_or(BASE.len());
    let one = format!(
        "{}[step]\nid = \"x\"\nkind = \"confirm\"\nsay = \"hi\"\n",
        &BASE[..first_step]
    );
    assert_diagnostics(
        "one [step]",
        &one,
        &[(
            E,
            "|[step]",
            "`[step]` is a single table, but there can be several",
            "write `[[step]]` (double brackets)",
        )],
    );
    let two = format!("{one}\n[step]\nid = \"y\"\n");
    assert_diagnostics(
        "two [step]",
        &two,
        &[
            (
                E,
                "|[step]\nid = \"x\"",
                "`[step]` is a single table, but there can be several",
                "write `[[step]]` (double brackets)",
            ),
            (
                E,
                "\n\n|[step]\nid = \"y\"",
                "`[step]` is a single table, but there can be several",
                "write `[[step]]` (double brackets)",
            ),
            (E, "\n\n|[step]\nid = \"y\"", "step `y` has no `kind`", ""),
        ],
    );
}

/// Issue 11.10: one `[step]` among `[[step]]`s was seven "duplicate key"
/// errors on the lines after it; now it is one error, at its own line.
#[test]
fn one_single_bracket_step_is_one_error_at_its_line() {
    let third = BASE.match_indices("[[step]]").nth(2).unwrap().0;
    let source = format!("{}[step]{}", &BASE[..third], &BASE[third + 8..]);
    assert_diagnostics(
        "third step single",
        &source,
        &[(
            E,
            "\n|[step]\n",
            "`[step]` is a single table, but there can be several",
            "write `[[step]]` (double brackets), once for each",
        )],
    );
    let shown = render(&load_str(Path::new("t.toml"), &source));
    assert!(shown.contains("| [step]\n"), "{shown}");
    // The same for checks, and a header inside a multi-line string is text.
    let check = BASE.replacen(
        "[on_halt]",
        "[preflight.check]\nname = \"backup\"\nrun = [\"true\"]\n\n[on_halt]",
        1,
    );
    assert_diagnostics(
        "single preflight.check",
        &check,
        &[(
            E,
            "|[preflight.check]",
            "`[preflight.check]` is a single table",
            "`[[preflight.check]]`",
        )],
    );
    let text = BASE.replacen("say = \"stop\"", "say = \"\"\"\n[step]\n\"\"\"", 1);
    assert_diagnostics("in a string", &text, &[]);
}

/// Issue 11.10: a wrong type gets help for that key.
#[test]
fn wrong_types_get_help_for_their_key() {
    let cases: &[(&str, &str, &str, Want)] = &[
        (
            "halt_on as a string",
            "[on_halt]",
            "[guard]\nhalt_on = \"smart.udma_crc_error_count\"\n\n[on_halt]",
            (
                E,
                "halt_on = |\"smart",
                "expected an array",
                "array of counter names",
            ),
        ),
        (
            "optional as a string",
            "quarantine = \"target\"\n",
            "quarantine = \"target\"\noptional = \"yes\"\n",
            (
                E,
                "optional = |\"yes\"",
                "expected a boolean",
                "`optional = true` or `optional = false`, without quotes",
            ),
        ),
        (
            "run as a string",
            "run = [\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]",
            "run = \"mdadm --fail\"",
            (
                E,
                "run = |\"mdadm",
                "expected an array",
                "one element per argument",
            ),
        ),
    ];
    for (name, from, to, want) in cases {
        let source = edit(from, to);
        let loaded = load_str(Path::new("t.toml"), &source);
        let got = loaded
            .diagnostics
            .iter()
            .find(|d| d.message.contains(want.2))
            .unwrap_or_else(|| panic!("{name}: {}", render(&loaded)));
        assert_eq!((got.line, got.column), position(&source, want.1), "{name}");
        let help = got.help.as_deref().unwrap_or("");
        assert!(help.contains(want.3), "{name}: {got}");
        if *name != "run as a string" {
            assert!(!help.contains("argv"), "{name}: {got}");
        }
    }
}

/// Issue 11.10: a wait step without a timeout is a warning.
#[test]
fn wait_step_without_timeout_warns() {
    let source = edit(
        "expect = { new = \"rebuilding\" }\n",
        "expect = { new = \"rebuilding\" }\n\n[[step]]\nid = \"rebuild\"\nkind = \"wait\"\nuntil = \"in-sync\"\nexpect = { new = \"in-sync\" }\n",
    );
    assert_diagnostics(
        "wait without timeout",
        &source,
        &[(
            W,
            "|[[step]]\nid = \"rebuild\"",
            "wait step `rebuild` has no `timeout`",
            "e.g. `timeout = \"24h\"`",
        )],
    );
    let with = source.replace(
        "until = \"in-sync\"",
        "until = \"in-sync\"\ntimeout = \"24h\"",
    );
    assert_diagnostics("wait with timeout", &with, &[]);
}

#[test]
fn double_brackets_for_a_section() {
    let source = BASE.replacen("[on_halt]", "[[on_halt]]", 1);
    assert_diagnostics(
        "[[on_halt]]",
        &source,
        &[(
            E,
            "|[[on_halt]]",
            "`[[on_halt]]` is an array of tables, but there is only one",
            "write `[on_halt]`",
        )],
    );
}

#[test]
fn a_string_for_an_argv_says_how_to_write_it() {
    let source = edit(
        "run = [\"mdadm\", \"/dev/{array}\", \"--fail\", \"{target.dev}\"]",
        "run = \"mdadm --fail\"",
    );
    assert_diagnostics(
        "run as a string",
        &source,
        &[(
            E,
            "run = |\"mdadm",
            "invalid type: string \"mdadm --fail\", expected an array",
            "one element per argument",
        )],
    );
}

#[test]
fn a_section_of_the_wrong_type_is_one_error() {
    let params = "[params]\narray = { kind = \"array\", help = \"a\" }\ntarget = { kind = \"member\", help = \"t\" }\n";
    let source = format!("params = 3\n{}", BASE.replacen(params, "", 1));
    assert_diagnostics(
        "params = 3",
        &source,
        &[(
            E,
            "params = |3",
            "invalid type: integer `3`, expected a table",
            "",
        )],
    );
}

#[test]
fn misspelt_key_is_reported_at_its_line_and_column() {
    let source = BASE.replacen(
        "[on_halt]",
        "[guard]\nsmart_poll = \"10s\"\n  smrt = \"required\"\n\n[on_halt]",
        1,
    );
    let loaded = load_str(Path::new("rb.toml"), &source);
    let [d] = loaded.diagnostics.as_slice() else {
        panic!("{}", render(&loaded));
    };
    assert_eq!((d.line, d.column, d.width), (14, 3, 4));
    assert_eq!(d.message, "unknown key `smrt` in [guard]");
    assert_eq!(d.help.as_deref(), Some("did you mean `smart`?"));
    assert!(d.to_string().contains("--> rb.toml:14:3"), "{d}");
}

#[test]
fn syntax_errors_are_reported_with_their_position() {
    let source = "[runbook]\nname = \"x\"\nbackend = \"md\"\n[guard\nsmart = \"required\"\n[[step]]\nid = \n";
    let loaded = load_str(Path::new("rb.toml"), source);
    let got: Vec<_> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (4, 7, "invalid TOML: unclosed table, expected `]`"),
            (
                7,
                6,
                "invalid TOML: string values must be quoted, expected literal string"
            ),
        ]
    );
    assert!(loaded.runbook.is_none());
}

#[test]
fn undefined_variable_column_is_inside_the_string() {
    let source = BASE.replacen("{target.slot}", "{target.sloot}", 1);
    let loaded = load_str(Path::new("rb.toml"), &source);
    let [d] = loaded.diagnostics.as_slice() else {
        panic!("{}", render(&loaded));
    };
    // `say = "Pull bay {target.sloot}."`: the name starts at column 18.
    assert_eq!((d.line, d.column, d.width), (24, 18, 12));
    assert_eq!(d.help.as_deref(), Some("did you mean `{target.slot}`?"));
}

#[test]
fn several_problems_in_one_file_are_all_reported() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks/many-problems.toml");
    let loaded = load(&path).unwrap_or_else(|e| panic!("{e:#}"));
    let got: Vec<(usize, usize, &str)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (4, 11, "unknown backend `mdd`"),
            (8, 19, "unknown param kind `membr`"),
            (11, 1, "unknown key `smrt` in [guard]"),
            (
                14,
                16,
                "invalid type: string \"one\", expected a whole number, 0 or more"
            ),
            (17, 33, "unknown precondition `no-rebuild-runing`"),
            (23, 21, "unknown expectation `failed`"),
            (25, 1, "physical step `fail` has no expectation"),
            (26, 6, "duplicate step id `fail`"),
            (28, 18, "a drive has no field `slott`"),
            (29, 1, "`run` does not apply to a physical step"),
            (30, 12, "invalid type: string \"yes\", expected a boolean"),
            (
                35,
                8,
                "`wipefs` erases signatures (add `--no-act` to only list them), but step `wipe` has no typed confirmation"
            ),
            (
                35,
                26,
                "`{new.dev}` is never known: no step expects `new = \"present\"`"
            ),
        ]
    );
    assert!(loaded.runbook.is_none());
}

/// Each fixture and the first error it must produce.
#[test]
fn fixtures_report_their_problem() {
    let cases = [
        (
            "misspelt-guard-key.toml",
            18,
            1,
            "unknown key `smrt` in [guard]",
        ),
        (
            "syntax-error.toml",
            5,
            7,
            "invalid TOML: unclosed table, expected `]`",
        ),
        (
            "undefined-variable.toml",
            31,
            53,
            "a drive has no field `serail`",
        ),
        (
            "duplicate-step-ids.toml",
            43,
            6,
            "duplicate step id `remove`",
        ),
        (
            "physical-without-expect.toml",
            28,
            1,
            "physical step `pull` has no expectation",
        ),
        (
            "destructive-without-confirm.toml",
            52,
            18,
            "`sgdisk --zap-all` writes the partition table, but step `wipe` has no typed confirmation",
        ),
        (
            "new-before-insert.toml",
            31,
            44,
            "`{new.dev}` is not known yet at this step",
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks");
    for (file, line, column, message) in cases {
        let loaded = load(&dir.join(file)).unwrap_or_else(|e| panic!("{e:#}"));
        let first = loaded.diagnostics.iter().find(|d| d.is_error());
        let got = first.map(|d| (d.line, d.column, d.message.as_str()));
        assert_eq!(
            got,
            Some((line, column, message)),
            "{file}:\n{}",
            render(&loaded)
        );
        assert!(loaded.runbook.is_none(), "{file}");
    }
}

#[test]
fn warnings_do_not_block_loading() {
    let source = edit("[on_halt]", "[guard]\nwatch_poll = \"2s\"\n\n[on_halt]");
    let loaded = load_str(Path::new("rb.toml"), &source);
    assert_eq!((loaded.errors(), loaded.warnings()), (0, 1));
    let runbook = loaded.runbook.expect("a runbook with only warnings loads");
    assert_eq!(runbook.guard.watch_poll, Duration::from_secs(2));
}

#[test]
fn member_runbook_model() {
    let loaded = load_str(Path::new("runbooks/md-replace-member.toml"), MEMBER);
    let runbook = loaded.runbook.expect("shipped runbook loads");
    assert_eq!(runbook.hash, hash(MEMBER));
    assert_eq!(
        runbook.path,
        PathBuf::from("runbooks/md-replace-member.toml")
    );
    let ids: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "antistatic",
            "fail",
            "remove",
            "locate",
            "pull",
            "insert",
            "add",
            "rebuild"
        ]
    );
    let params: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["array", "target"]);
    assert_eq!(runbook.preflight.require.len(), 4);
    assert!(runbook.on_halt.starts_with("STOP."));

    let step = |id: &str| runbook.step(id).unwrap_or_else(|| panic!("step {id}"));
    assert_eq!(step("antistatic").kind, StepKind::Confirm);
    assert!(matches!(
        step("fail").kind,
        StepKind::Command {
            destructive: false,
            ..
        }
    ));
    assert_eq!(step("fail").expect.target, Some(DriveExpect::Faulty));
    assert_eq!(step("remove").expect.target, Some(DriveExpect::Removed));
    assert_eq!(step("locate").kind, StepKind::Locate { on: Role::Target });
    assert!(step("locate").optional);
    assert_eq!(step("pull").expect.target, Some(DriveExpect::Absent));
    assert_eq!(step("pull").quarantine, Some(Role::Target));
    let say = step("pull")
        .say
        .as_ref()
        .map(|t| t.text.as_str())
        .unwrap_or("");
    assert!(
        say.contains("{target.slot}") && say.contains("{target.serial}"),
        "{say}"
    );
    assert_eq!(step("insert").expect.new, Some(DriveExpect::Present));
    let rule = step("insert").new_drive.as_ref().expect("new-drive rule");
    assert!(rule.blank && rule.not_quarantined);
    assert_eq!(
        rule.min_size.as_ref().map(|t| t.text.as_str()),
        Some("{target.size}")
    );
    assert!(matches!(
        step("add").kind,
        StepKind::Command {
            destructive: true,
            ..
        }
    ));
    assert_eq!(step("add").confirm, Confirm::TypeSerial(Role::New));
    assert_eq!(step("add").expect.new, Some(DriveExpect::Rebuilding));
    assert_eq!(
        step("rebuild").timeout,
        Some(Duration::from_secs(24 * 3600))
    );
    assert_eq!(step("rebuild").expect.new, Some(DriveExpect::InSync));
}

#[test]
fn hot_runbook_model() {
    let loaded = load_str(Path::new("runbooks/md-replace-hot.toml"), HOT);
    let runbook = loaded.runbook.expect("shipped runbook loads");
    let ids: Vec<&str> = runbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "antistatic",
            "insert",
            "replace",
            "copy",
            "remove",
            "locate",
            "pull"
        ]
    );
    assert_eq!(runbook.guard.max_degraded, Some(0));
    let step = |id: &str| runbook.step(id).unwrap_or_else(|| panic!("step {id}"));
    let replace = step("replace");
    assert!(matches!(
        replace.kind,
        StepKind::Command {
            destructive: true,
            ..
        }
    ));
    assert_eq!(replace.confirm, Confirm::TypeSerial(Role::New));
    assert_eq!(
        (
            replace.expect.new,
            replace.expect.target,
            replace.expect.degraded
        ),
        (
            Some(DriveExpect::Rebuilding),
            Some(DriveExpect::InSync),
            Some(0)
        )
    );
    let copy = step("copy");
    assert_eq!(
        (copy.expect.new, copy.expect.target, copy.expect.degraded),
        (
            Some(DriveExpect::InSync),
            Some(DriveExpect::Faulty),
            Some(0)
        )
    );
    assert_eq!(step("pull").quarantine, Some(Role::Target));
}

#[test]
fn preflight_checks_build_their_tests() {
    let source = edit(
        "[on_halt]",
        "[[preflight.check]]\nname = \"backup\"\nrun = [\"restic\", \"snapshots\"]\njson = { pointer = \"/0/time\", max_age = \"24h\" }\n\n\
         [[preflight.check]]\nname = \"replication paused\"\nrun = [\"repl\", \"status\"]\ntimeout = \"5s\"\njson = { pointer = \"/paused\", equals = true }\n\n\
         [[preflight.check]]\nname = \"stamp\"\nrun = [\"stamp\"]\njson = { pointer = \"\", equals = [1, \"a\", 1979-05-27T07:32:00Z] }\n\n\
         [[preflight.check]]\nname = \"ping\"\nrun = [\"ping\", \"-c1\", \"backup\"]\n\n[on_halt]",
    );
    let loaded = load_str(Path::new("rb.toml"), &source);
    let shown = render(&loaded);
    let runbook = loaded.runbook.unwrap_or_else(|| panic!("{shown}"));
    let tests: Vec<(&str, &CheckTest, Duration)> = runbook
        .preflight
        .checks
        .iter()
        .map(|c| (c.name.as_str(), &c.test, c.timeout))
        .collect();
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        tests,
        [
            (
                "backup",
                &CheckTest::JsonMaxAge {
                    pointer: "/0/time".into(),
                    max_age: day
                },
                Duration::from_secs(60)
            ),
            (
                "replication paused",
                &CheckTest::JsonEquals {
                    pointer: "/paused".into(),
                    value: serde_json::json!(true)
                },
                Duration::from_secs(5)
            ),
            (
                "stamp",
                &CheckTest::JsonEquals {
                    pointer: String::new(),
                    value: serde_json::json!([1, "a", "1979-05-27T07:32:00Z"])
                },
                Duration::from_secs(60)
            ),
            ("ping", &CheckTest::ExitZero, Duration::from_secs(60)),
        ]
    );
    assert_eq!(runbook.preflight.checks[0].run[1].text, "snapshots");
}

#[test]
fn hash_is_sha256_hex() {
    assert_eq!(
        hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn missing_sections_are_errors() {
    let loaded = load_str(Path::new("rb.toml"), "");
    let got: Vec<&str> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        got,
        [
            "missing `[runbook]` table",
            "missing `[params]`: a runbook needs an `array` param and a `target` member param",
            "no `[preflight]`: no built-in precondition is checked before step 1",
            "no `[on_halt] say`: after a halt the technician is not told what to do",
            "the runbook has no steps",
        ]
    );
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| (d.line, d.column) == (1, 1))
    );
}

#[test]
fn unreadable_file_is_an_err_naming_it() {
    let path = Path::new("/nonexistent/swapguard/rb.toml");
    let err = load(path).expect_err("no such file");
    assert!(format!("{err:#}").contains("cannot read runbook `/nonexistent/swapguard/rb.toml`"));
}

/// Every prefix of the shipped runbooks, every runbook with one line
/// removed, and some odd bytes: a diagnostic each time, never a panic.
#[test]
fn never_panics_on_broken_input() {
    for source in [MEMBER, HOT, BASE] {
        for end in (0..=source.len()).filter(|&i| source.is_char_boundary(i)) {
            let loaded = load_str(Path::new("rb.toml"), &source[..end]);
            // A prefix may well be a valid, shorter runbook; but no model
            // must ever come without a reason.
            assert_eq!(
                loaded.runbook.is_none(),
                loaded.errors() > 0,
                "prefix of {end} bytes"
            );
        }
        let lines: Vec<&str> = source.lines().collect();
        for skip in 0..lines.len() {
            let text: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            let _ = load_str(Path::new("rb.toml"), &text.join("\n"));
        }
    }
    for cut in (0..BASE.len()).filter(|&i| BASE.is_char_boundary(i)) {
        let mut text = BASE.to_string();
        text.remove(cut);
        let loaded = load_str(Path::new("rb.toml"), &text);
        assert_eq!(
            loaded.runbook.is_none(),
            loaded.errors() > 0,
            "byte {cut} removed"
        );
    }
    for odd in [
        "\u{feff}[runbook]",
        "\0",
        "[[step]]\n[[step]]\nid = \"\u{1F4A5}\"",
        "a = \"\\u0000{\"",
        "x = '''\n{new.dev",
        "[a.b.c]\n[a]\nb = 1",
    ] {
        let _ = load_str(Path::new("rb.toml"), odd);
    }
}

/// A check step and a canary appended to BASE, for the rules below.
const CHECK_STEP: &str =
    "\n[[step]]\nid = \"verified\"\nkind = \"check\"\nrun = [\"restic\", \"check\"]\n";

#[test]
fn check_step_canary_drive_and_sign_off_rules() {
    let with_check = |extra: &str| format!("{BASE}{CHECK_STEP}{extra}");
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        ("a plain check step", with_check(""), vec![]),
        (
            "exit list and a regex",
            with_check("exit = [0, 3]\nmatches = \"(?m)^t$\"\n"),
            vec![],
        ),
        (
            "exit out of range",
            with_check("exit = 300\n"),
            vec![(E, "exit = |300", "`exit` must be an exit status from 0 to 255", "exit = [0, 1]")],
        ),
        (
            "bad regex",
            with_check("matches = \"(\"\n"),
            vec![(E, "matches = |\"(\"", "`(` is not a regular expression", "regex")],
        ),
        (
            "two output tests",
            with_check("matches = \"a\"\nnot_matches = \"b\"\n"),
            vec![(E, "not_matches = |\"b\"", "step `verified` has both `matches` and `not_matches`", "one test")],
        ),
        (
            "json at_most needs a number",
            with_check("json = { pointer = \"/lag\", at_most = \"zero\" }\n"),
            vec![(E, "at_most = |\"zero\"", "`at_most` must be a number", "at_most = 0")],
        ),
        (
            "json with two tests",
            with_check("json = { pointer = \"/s\", equals = 1, not_equals = 2 }\n"),
            vec![(E, "not_equals = |2", "`json` has both `equals` and `not_equals`", "")],
        ),
        (
            "a check that writes",
            format!("{BASE}\n[[step]]\nid = \"verified\"\nkind = \"check\"\nrun = [\"wipefs\", \"-a\", \"{{target.dev}}\"]\n"),
            vec![(E, "run = [|\"wipefs\"", "step `verified` runs a command that writes", "must only read")],
        ),
        (
            "check keys on a command step",
            BASE.replacen("expect = { new = \"rebuilding\" }", "expect = { new = \"rebuilding\" }\nmatches = \"x\"", 1),
            vec![(E, "|matches = \"x\"", "`matches` does not apply to a command step", "check steps")],
        ),
        (
            "sign-off on a check step",
            with_check("sign_off = true\n"),
            vec![(E, "|sign_off = true", "`sign_off` does not apply to a check step", "command or physical")],
        ),
        (
            "canary",
            format!("{BASE}\n[canary]\npath = \"/srv/db\"\nsize = \"64Ki\"\nevery = \"500ms\"\nafter = \"fail\"\n"),
            vec![],
        ),
        (
            "canary: relative path, odd size, unknown step",
            format!("{BASE}\n[canary]\npath = \"srv\"\nsize = \"1000\"\nafter = \"nope\"\n"),
            vec![
                (E, "path = |\"srv\"", "canary `path` `srv` is not absolute", "/srv/db"),
                (E, "size = |\"1000\"", "whole number of 4 KiB blocks", "1Mi"),
                (E, "after = |\"nope\"", "canary `after` names no step: `nope`", "`fail`"),
            ],
        ),
        (
            "canary: slow re-reads warn",
            format!("{BASE}\n[canary]\npath = \"/srv/db\"\nevery = \"1m\"\n"),
            vec![(W, "every = |\"1m\"", "re-read only every 1m", "10s or less")],
        ),
        (
            "canary: unknown key",
            format!("{BASE}\n[canary]\npath = \"/srv/db\"\nsise = \"1Mi\"\n"),
            vec![(E, "|sise", "unknown key `sise` in [canary]", "did you mean `size`?")],
        ),
        (
            "a drive param must be the target",
            BASE.replacen("target = { kind = \"member\", help = \"t\" }", "target = { kind = \"member\", help = \"t\" }\nspare = { kind = \"drive\", help = \"s\" }", 1),
            vec![(E, "|spare = {", "`drive` param `spare` is not the `target`", "call it `target`")],
        ),
    ];
    for (name, source, want) in &cases {
        assert_diagnostics(name, source, want);
    }
}

#[test]
fn check_step_canary_and_sign_off_reach_the_model() {
    let source = format!(
        "{}{CHECK_STEP}json = {{ pointer = \"/0/time\", max_age = \"24h\" }}\ntimeout = \"5m\"\n\n[canary]\npath = \"/srv/{{array}}\"\n",
        BASE.replacen(
            "confirm = \"type-serial\"",
            "confirm = \"type-serial\"\nsign_off = true",
            1
        )
    );
    let loaded = load_str(Path::new("t.toml"), &source);
    let shown = render(&loaded);
    let runbook = loaded.runbook.unwrap_or_else(|| panic!("{shown}"));
    let step = runbook.step("verified").unwrap();
    let StepKind::Check { check } = &step.kind else {
        panic!("{:?}", step.kind)
    };
    assert_eq!(check.name, "verified");
    assert_eq!(check.exit, [0]);
    assert_eq!(check.timeout, Duration::from_secs(300));
    assert_eq!(
        check.test,
        CheckTest::JsonMaxAge {
            pointer: "/0/time".into(),
            max_age: Duration::from_secs(86_400)
        }
    );
    assert!(runbook.step("add").unwrap().sign_off);
    assert!(!runbook.step("fail").unwrap().sign_off);
    let canary = runbook.canary.unwrap();
    assert_eq!(canary.dir.text, "/srv/{array}");
    assert_eq!(
        (canary.size, canary.every, canary.after),
        (1 << 20, Duration::from_secs(1), None)
    );
}

#[test]
fn notify_rules() {
    let cases: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "notify: a plain alertmanager webhook",
            format!(
                "{BASE}\n[notify]\nurl = \"http://127.0.0.1:9093/api/v2/alerts\"\nformat = \"alertmanager\"\nevents = [\"halt\", \"finish\"]\ntimeout = \"2s\"\nretries = 1\ndry_runs = true\n"
            ),
            vec![],
        ),
        (
            "notify: no url",
            format!("{BASE}\n[notify]\nformat = \"slack\"\n"),
            vec![(E, "|[notify]", "`[notify]` has no `url`", "api/v2/alerts")],
        ),
        (
            "notify: bad values each point at their key",
            format!(
                "{BASE}\n[notify]\nurl = \"ftp://x\"\nformat = \"teams\"\nevents = [\"halted\"]\ntimeout = \"0s\"\nretries = 99\n"
            ),
            vec![
                (
                    E,
                    "url = |\"ftp://x\"",
                    "does not start with `http://`",
                    "api/v2/alerts",
                ),
                (
                    E,
                    "format = |\"teams\"",
                    "unknown notify format `teams`",
                    "",
                ),
                (
                    E,
                    "events = [|\"halted\"]",
                    "unknown notify event `halted`",
                    "",
                ),
                (E, "timeout = |\"0s\"", "more than zero", ""),
                (E, "retries = |99", "0 to 10", ""),
            ],
        ),
        (
            "notify: unknown key",
            format!("{BASE}\n[notify]\nurl = \"http://h/\"\nformats = \"slack\"\n"),
            vec![(
                E,
                "|formats",
                "unknown key `formats` in [notify]",
                "did you mean `format`?",
            )],
        ),
    ];
    for (name, source, want) in &cases {
        assert_diagnostics(name, source, want);
    }
    let source =
        format!("{BASE}\n[notify]\nurl = \"https://hooks.example/T/B/x\"\nformat = \"slack\"\n");
    let runbook = crate::runbook::load::load_str(std::path::Path::new("r.toml"), &source)
        .runbook
        .unwrap();
    let notify = runbook.notify.unwrap();
    assert_eq!(notify.format, crate::notify::Format::Slack);
    assert!(!notify.dry_runs);
}
