//! Which commands can destroy data, judged from their argv alone.
//!
//! A destructive command must sit behind `confirm = "type-serial"`, so the
//! technician types the last characters of the serial of the drive about to
//! be written: the incident that started this project restored a backup onto
//! the wrong drive. The judgement fails closed: a program run through a shell
//! or another wrapper, or named by a variable, cannot be judged and counts as
//! destructive in a step. A command not listed here counts as read-only;
//! the list covers the tools that erase, partition, format or rebuild onto a
//! drive.

/// What running an argv may do to data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    ReadOnly,
    /// It writes over data; `at` is the argv element that says so.
    Destroys {
        at: usize,
        what: String,
    },
    /// It runs something this check cannot see.
    Opaque {
        at: usize,
        what: String,
    },
}

/// Programs that run another program given in their arguments.
const WRAPPERS: [&str; 16] = [
    "sh", "bash", "dash", "zsh", "ksh", "busybox", "sudo", "doas", "env", "xargs", "nice",
    "ionice", "timeout", "nohup", "chroot", "nsenter",
];

/// Always destructive when run at all.
const ALWAYS: [(&str, &str); 7] = [
    ("dd", "`dd` writes raw blocks"),
    ("shred", "`shred` overwrites a device"),
    ("blkdiscard", "`blkdiscard` discards every block"),
    ("mkswap", "`mkswap` formats a device"),
    ("mke2fs", "`mke2fs` formats a device"),
    ("sg_format", "`sg_format` low-level formats a drive"),
    ("pvcreate", "`pvcreate` writes an LVM label"),
];

/// sgdisk options that only read.
const SGDISK_READS: [&str; 14] = [
    "-p",
    "--print",
    "-v",
    "--verify",
    "-i",
    "--info",
    "-b",
    "--backup",
    "-L",
    "--list-types",
    "-O",
    "--print-mbr",
    "-h",
    "--help",
];

/// parted commands that write.
const PARTED_WRITES: [&str; 14] = [
    "mklabel",
    "mktable",
    "mkpart",
    "mkpartfs",
    "rm",
    "resize",
    "resizepart",
    "name",
    "set",
    "toggle",
    "disk_set",
    "disk_toggle",
    "rescue",
    "type",
];

/// `(program, first argument)` pairs that write to a drive.
const SUBCOMMANDS: [(&str, &str, &str); 12] = [
    ("nvme", "format", "formats the namespace"),
    ("nvme", "sanitize", "erases the drive"),
    ("nvme", "write-zeroes", "writes zeroes"),
    ("nvme", "delete-ns", "deletes a namespace"),
    ("zpool", "create", "writes new labels"),
    ("zpool", "labelclear", "erases ZFS labels"),
    ("zpool", "replace", "resilvers onto the new drive"),
    ("zpool", "attach", "resilvers onto the new drive"),
    ("zpool", "add", "writes new labels"),
    ("btrfs", "replace", "copies onto the new drive"),
    ("btrfs", "device", "writes to the device it adds"),
    ("cryptsetup", "luksFormat", "formats the device"),
];

/// A tool's write that is a subcommand path (`replace start` for
/// `btrfs`): its words appear one after the other among the arguments
/// that are not options, each word in full or abbreviated as the tool
/// allows (`btrfs rep sta`). Returns the index in `args` of the path's
/// last word.
fn subcommand_write(
    tool: &crate::backend::registry::Tool,
    args: &[&str],
) -> Option<(usize, &'static str, &'static str)> {
    let words: Vec<(usize, &str)> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.starts_with('-'))
        .map(|(i, a)| (i, *a))
        .collect();
    let abbreviates = |word: &str, full: &str| {
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic()) && full.starts_with(word)
    };
    for (flag, what) in tool.writes.iter().filter(|(f, _)| f.contains(' ')) {
        let path: Vec<&str> = flag.split(' ').collect();
        for window in words.windows(path.len()) {
            if window
                .iter()
                .zip(&path)
                .all(|((_, w), p)| abbreviates(w, p))
            {
                return Some((window[path.len() - 1].0, flag, what));
            }
        }
    }
    None
}

/// Judge an argv (templates unrendered).
pub(crate) fn classify(argv: &[&str]) -> Effect {
    let Some(first) = argv.first() else {
        return Effect::ReadOnly;
    };
    if first.contains('{') {
        return Effect::Opaque {
            at: 0,
            what: "the program is a variable".into(),
        };
    }
    let program = first.rsplit('/').next().unwrap_or(first);
    let destroys = |at: usize, what: String| Effect::Destroys { at, what };
    if WRAPPERS.contains(&program) {
        return Effect::Opaque {
            at: 0,
            what: format!("`{program}` runs another program"),
        };
    }
    if let Some((_, what)) = ALWAYS.iter().find(|(p, _)| *p == program) {
        return destroys(0, (*what).to_string());
    }
    if program.starts_with("mkfs") {
        return destroys(0, format!("`{program}` formats a device"));
    }
    let args = &argv[1..];
    // Index in `argv` of the first argument that satisfies `test`.
    let find = |test: &dyn Fn(&str) -> bool| args.iter().position(|a| test(a)).map(|i| i + 1);
    // A backend's own tool (md: `mdadm`): the backend lists the options
    // that write to a drive.
    if let Some(tool) = crate::backend::registry::tool(program) {
        // storcli and perccli take their words in any case (`Set Offline`).
        let folded: Vec<String>;
        let folded_args: Vec<&str>;
        let args = if crate::backend::megaraid::facts::PROGRAMS.contains(&program) {
            folded = args.iter().map(|a| a.to_ascii_lowercase()).collect();
            folded_args = folded.iter().map(String::as_str).collect();
            &folded_args[..]
        } else {
            args
        };
        if let Some((at, flag, what)) = subcommand_write(tool, args) {
            return destroys(at + 1, format!("`{program} {flag}` {what}"));
        }
        for (i, arg) in args.iter().enumerate() {
            let option = arg.split('=').next().unwrap_or(arg);
            if let Some((flag, what)) = tool.writes.iter().find(|(f, _)| *f == option) {
                return destroys(i + 1, format!("`{program} {flag}` {what}"));
            }
        }
        return Effect::ReadOnly;
    }
    match program {
        "wipefs" => {
            let no_act = |a: &str| {
                a == "--no-act"
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                        && a.contains('n'))
            };
            if find(&no_act).is_some() {
                Effect::ReadOnly
            } else {
                destroys(
                    0,
                    "`wipefs` erases signatures (add `--no-act` to only list them)".into(),
                )
            }
        }
        "sgdisk" => {
            if find(&|a| a == "-P" || a == "--pretend").is_some() {
                return Effect::ReadOnly;
            }
            let writes = |a: &str| {
                let option = a.split('=').next().unwrap_or(a);
                option.starts_with('-') && !SGDISK_READS.contains(&option)
            };
            match find(&writes) {
                Some(at) => destroys(
                    at,
                    format!("`sgdisk {}` writes the partition table", argv[at]),
                ),
                None => Effect::ReadOnly,
            }
        }
        "sfdisk" | "fdisk" => partitioner(program, args),
        "parted" => {
            if let Some(at) = find(&|a| PARTED_WRITES.contains(&a)) {
                return destroys(
                    at,
                    format!("`parted {}` writes the partition table", argv[at]),
                );
            }
            let reads = |a: &str| {
                matches!(
                    a,
                    "-l" | "--list" | "print" | "help" | "version" | "align-check"
                )
            };
            if find(&reads).is_some() {
                Effect::ReadOnly
            } else {
                destroys(0, "`parted` without a read-only command may write".into())
            }
        }
        "hdparm" => {
            let writes = |a: &str| {
                [
                    "--security-erase",
                    "--trim-sector-ranges",
                    "--write-sector",
                    "--make-bad-sector",
                    "--dco-restore",
                ]
                .iter()
                .any(|w| a.starts_with(w))
            };
            match find(&writes) {
                Some(at) => destroys(at, format!("`hdparm {}` writes to the drive", argv[at])),
                None => Effect::ReadOnly,
            }
        }
        _ => {
            let sub = args.first().copied().unwrap_or("");
            match SUBCOMMANDS
                .iter()
                .find(|(p, s, _)| *p == program && *s == sub)
            {
                Some((_, _, what)) => destroys(1, format!("`{program} {sub}` {what}")),
                None => Effect::ReadOnly,
            }
        }
    }
}

/// `sfdisk` and `fdisk` read a script or commands and write them, unless a
/// listing mode is asked for and nothing else.
fn partitioner(program: &str, args: &[&str]) -> Effect {
    let (modes, harmless): (&[&str], &[&str]) = if program == "sfdisk" {
        (
            &[
                "-l",
                "--list",
                "-d",
                "--dump",
                "-J",
                "--json",
                "-s",
                "--show-size",
                "-V",
                "--verify",
                "-g",
                "--show-geometry",
                "-F",
                "--list-free",
                "-n",
                "--no-act",
                "-h",
                "--help",
                "-v",
                "--version",
            ],
            &[
                "-q",
                "--quiet",
                "-X",
                "--label",
                "--color",
                "-o",
                "--output",
                "--sector-size",
            ],
        )
    } else {
        (
            &[
                "-l",
                "--list",
                "-x",
                "--list-details",
                "-h",
                "--help",
                "-V",
                "--version",
            ],
            &[
                "-b",
                "--sector-size",
                "-u",
                "--units",
                "-L",
                "--color",
                "-o",
                "--output",
                "-t",
                "--type",
            ],
        )
    };
    let mut read_mode = false;
    for (i, arg) in args.iter().enumerate() {
        let option = arg.split('=').next().unwrap_or(arg);
        if !option.starts_with('-') {
            continue;
        }
        if modes.contains(&option) {
            read_mode = true;
        } else if !harmless.contains(&option) {
            return Effect::Destroys {
                at: i + 1,
                what: format!("`{program} {arg}` writes the partition table"),
            };
        }
    }
    if read_mode {
        Effect::ReadOnly
    } else {
        Effect::Destroys {
            at: 0,
            what: format!("`{program}` without a listing option writes the partition table"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_commands() {
        // (argv, destroys?, opaque?, index that says so)
        let cases: &[(&str, &str, usize)] = &[
            ("mdadm /dev/{array} --fail {target.dev}", "read", 0),
            ("mdadm /dev/{array} --remove {target.dev}", "read", 0),
            ("mdadm /dev/{array} --add {new.dev}", "destroys", 2),
            (
                "mdadm /dev/{array} --replace {target.dev} --with {new.dev}",
                "destroys",
                4,
            ),
            ("mdadm --zero-superblock {target.dev}", "destroys", 1),
            ("/sbin/mdadm --detail /dev/md0", "read", 0),
            ("wipefs -a {new.dev}", "destroys", 0),
            ("wipefs --no-act {new.dev}", "read", 0),
            ("wipefs -n {new.dev}", "read", 0),
            ("dd if=/dev/zero of={new.dev}", "destroys", 0),
            ("mkfs.ext4 {new.dev}", "destroys", 0),
            ("blkdiscard {new.dev}", "destroys", 0),
            ("shred {new.dev}", "destroys", 0),
            ("sgdisk --zap-all {new.dev}", "destroys", 1),
            ("sgdisk -Z {new.dev}", "destroys", 1),
            ("sgdisk -z {new.dev}", "destroys", 1),
            ("sgdisk {target.dev} -R {new.dev}", "destroys", 2),
            ("sgdisk -p {new.dev}", "read", 0),
            ("sgdisk --pretend --zap-all {new.dev}", "read", 0),
            ("parted -s {new.dev} print", "read", 0),
            ("parted -s {new.dev} mklabel gpt", "destroys", 3),
            ("parted {new.dev}", "destroys", 0),
            ("sfdisk --dump {target.dev}", "read", 0),
            ("sfdisk {new.dev}", "destroys", 0),
            ("sfdisk --delete {new.dev} 1", "destroys", 1),
            ("fdisk -l {new.dev}", "read", 0),
            ("fdisk {new.dev}", "destroys", 0),
            ("nvme format {new.dev}", "destroys", 1),
            ("nvme smart-log {new.dev}", "read", 0),
            ("sh -c dd", "opaque", 0),
            ("sudo mdadm --add", "opaque", 0),
            ("{tool} --go", "opaque", 0),
            ("smartctl --json -a {target.dev}", "read", 0),
            ("restic snapshots --latest 1 --json", "read", 0),
            (
                "btrfs replace start -r {target.member} {new.dev} {array}",
                "destroys",
                2,
            ),
            (
                "btrfs rep sta {target.member} {new.dev} {array}",
                "destroys",
                2,
            ),
            (
                "btrfs --format json replace start 1 {new.dev} /mnt",
                "destroys",
                4,
            ),
            ("btrfs replace status -1 {array}", "read", 0),
            ("btrfs replace cancel {array}", "read", 0),
            ("btrfs device add {new.dev} {array}", "destroys", 2),
            ("btrfs device remove 2 {array}", "destroys", 2),
            ("btrfs device stats --format json {array}", "read", 0),
            ("btrfs scrub start -B {array}", "read", 0),
            (
                "btrfs balance start -dconvert=raid1,soft {array}",
                "read",
                0,
            ),
            ("btrfs balance status {array}", "read", 0),
            ("btrfs filesystem resize 1:max {array}", "read", 0),
            ("btrfs filesystem show --raw {array}", "read", 0),
            ("btrfs check --repair {target.dev}", "destroys", 2),
            ("btrfs rescue zero-log {target.dev}", "destroys", 1),
            ("storcli64 {target.dev} set offline J", "destroys", 2),
            ("storcli64 {target.dev} spindown J", "destroys", 2),
            ("perccli64 /c0/e32/s4 set missing J", "destroys", 2),
            ("storcli64 {target.dev} start locate J", "read", 0),
            ("storcli64 {target.dev} stop locate J", "read", 0),
            ("storcli64 {new.dev} start rebuild J", "destroys", 3),
            (
                "storcli {new.dev} start copyback target=252:3 J",
                "destroys",
                3,
            ),
            ("storcli64 {new.dev} show rebuild J", "read", 0),
            (
                "storcli64 {new.dev} insert dg=0 array=0 row=1 J",
                "destroys",
                2,
            ),
            ("storcli64 /c0/fall delete J", "destroys", 2),
            ("storcli64 /c0/fall import J", "destroys", 2),
            ("storcli64 /c0/fall show J", "read", 0),
            ("storcli64 /c0/eall/sall show all J", "read", 0),
            ("perccli /c0 show events J", "read", 0),
            ("storcli64 {target.dev} Set Offline J", "destroys", 2),
            ("storcli64 {new.dev} START REBUILD J", "destroys", 3),
            ("storcli64 {new.dev} Start Locate J", "read", 0),
        ];
        for (line, want, index) in cases {
            let argv: Vec<&str> = line.split(' ').collect();
            let got = classify(&argv);
            let (kind, at) = match &got {
                Effect::ReadOnly => ("read", 0),
                Effect::Destroys { at, .. } => ("destroys", *at),
                Effect::Opaque { at, .. } => ("opaque", *at),
            };
            assert_eq!((kind, at), (*want, *index), "{line}: {got:?}");
        }
        assert_eq!(classify(&[]), Effect::ReadOnly);
    }
}
