//! Property tests for the guard (`health::guard::compare`), over generated
//! arrays: any counter increase on a survivor is always a violation that
//! names the survivor and the counter; identical (readable) snapshots never
//! are. Readable, because health that cannot be read is a violation even
//! when it was unreadable before too (fail closed).

use std::collections::BTreeMap;

use proptest::collection::btree_map;
use proptest::prelude::{Just, ProptestConfig, Strategy, any, prop_assert, prop_oneof, proptest};
use proptest::sample::{Index, select, subsequence};

use swapguard::health::guard::{Allowed, NewAllowance, Observed, Subject, compare};
use swapguard::health::model::{
    ArrayHealth, Drive, Identity, MemberState, Membership, Smart, Snapshot,
};
use swapguard::runbook::model::{DriveExpect, GuardPolicy};

const MD_COUNTERS: [&str; 3] = ["md.errors", "md.bad_blocks", "io.ioerr_cnt"];
const SMART_COUNTERS: [&str; 5] = [
    "smart.reallocated_sector_ct",
    "smart.current_pending_sector",
    "smart.offline_uncorrectable",
    "nvme.media_errors",
    "nvme.critical_warning",
];
const FLAGS: [&str; 6] = [
    "in_sync",
    "write_error",
    "want_replacement",
    "blocked",
    "faulty",
    "replacement",
];

fn counters(names: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, u64>> {
    btree_map(
        select(names).prop_map(str::to_string),
        0u64..1000,
        0..=names.len(),
    )
}

fn smart() -> impl Strategy<Value = Option<Smart>> {
    prop_oneof![
        Just(None),
        (any::<bool>(), counters(&SMART_COUNTERS))
            .prop_map(|(passed, counters)| Some(Smart::Read { passed, counters })),
    ]
}

fn membership() -> impl Strategy<Value = Option<Membership>> {
    let state = select(vec![
        MemberState::InSync,
        MemberState::Rebuilding,
        MemberState::Spare,
        MemberState::Faulty,
    ]);
    prop_oneof![
        4 => (state, subsequence(FLAGS.to_vec(), 0..=3), proptest::option::of(0u32..8)).prop_map(
            |(state, flags, role)| Some(Membership {
                state,
                role,
                flags: flags.into_iter().map(str::to_string).collect(),
                name: None,
            })
        ),
        1 => Just(None),
    ]
}

fn drive(i: usize) -> impl Strategy<Value = Drive> {
    (
        membership(),
        counters(&MD_COUNTERS),
        smart(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(move |(member, counters, smart, blank)| Drive {
            id: Identity {
                dev: format!("sd{}", char::from(b'a' + i as u8)),
                serial: Some(format!("SERIAL{i:04}")),
                wwn: Some(format!("0x5000{i:012x}")),
                model: Some("MODEL".into()),
                slot: Some(i.to_string()),
                size_bytes: Some(960_000_000_000),
                ..Identity::default()
            },
            member,
            counters,
            smart,
            blank,
            faults: Vec::new(),
        })
}

/// A readable snapshot with at least two members, and which one is the target.
fn array() -> impl Strategy<Value = (Snapshot, usize)> {
    (2usize..7)
        .prop_flat_map(|n| {
            let drives: Vec<_> = (0..n).map(drive).collect();
            (
                drives,
                select(vec!["raid1", "raid5", "raid6", "raid10"]),
                select(vec!["clean", "active", "degraded", "inactive"]),
                0u32..3,
                any::<Index>(),
            )
        })
        .prop_filter_map(
            "two members",
            |(mut drives, level, state, degraded, pick)| {
                // At least two members: the first two drives always are.
                for d in drives.iter_mut().take(2) {
                    if d.member.is_none() {
                        d.member = Some(Membership {
                            state: MemberState::InSync,
                            role: Some(0),
                            flags: vec!["in_sync".into()],
                            name: None,
                        });
                    }
                }
                let members: Vec<usize> = (0..drives.len())
                    .filter(|&i| drives[i].member.is_some())
                    .collect();
                let target = members[pick.index(members.len())];
                let mut snap = Snapshot {
                    at_ms: 0,
                    array: ArrayHealth {
                        name: "md0".into(),
                        level: level.into(),
                        state: state.into(),
                        raid_disks: members.len() as u32,
                        degraded,
                        sync: None,
                        ..ArrayHealth::default()
                    },
                    drives,
                    problems: vec![],
                };
                swapguard::backend::md::facts::annotate(&mut snap);
                Some((snap, target))
            },
        )
}

fn expect_of(observed: Observed) -> DriveExpect {
    match observed {
        Observed::InSync => DriveExpect::InSync,
        Observed::Rebuilding => DriveExpect::Rebuilding,
        Observed::Faulty => DriveExpect::Faulty,
        Observed::Spare | Observed::Removed => DriveExpect::Removed,
        Observed::Absent => DriveExpect::Absent,
    }
}

fn allowed(base: &Snapshot, target: usize) -> Allowed {
    let t = &base.drives[target];
    Allowed {
        target: t.key(),
        target_states: vec![expect_of(Observed::of(Some(t)))],
        new: NewAllowance::NotYet,
        max_degraded: base.array.degraded,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn identical_snapshots_never_violate((base, target) in array()) {
        let violations = compare(&base, &base.clone(), &allowed(&base, target), &GuardPolicy::default());
        prop_assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn any_counter_increase_on_a_survivor_violates(
        (base, target) in array(),
        which in any::<Index>(),
        counter in any::<Index>(),
        smart_side in any::<bool>(),
        by in 1u64..1_000_000,
    ) {
        let survivors: Vec<usize> = (0..base.drives.len())
            .filter(|&i| i != target && base.drives[i].member.is_some())
            .collect();
        let s = survivors[which.index(survivors.len())];
        let mut now = base.clone();
        let drive = &mut now.drives[s];
        let (map, names): (&mut BTreeMap<String, u64>, &[&str]) = match (&mut drive.smart, smart_side) {
            (Some(Smart::Read { counters, .. }), true) => (counters, &SMART_COUNTERS),
            _ => (&mut drive.counters, &MD_COUNTERS),
        };
        // An existing counter rises, or one not reported before shows up
        // above zero.
        let name = names[counter.index(names.len())].to_string();
        let value = map.entry(name.clone()).or_insert(0);
        *value += by;
        let who = base.drives[s].id.describe();
        let violations = compare(&base, &now, &allowed(&base, target), &GuardPolicy::default());
        prop_assert!(
            violations.iter().any(|v| v.subject == Subject::Survivor && v.who == who && v.what == name),
            "{name} +{by} on {who}: {violations:?}"
        );
    }
}

#[test]
fn generated_arrays_include_survivors_with_smart() {
    // Guards the generator itself: the SMART side of the property must be
    // reachable, not only the sysfs counters.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut with_smart = 0;
    for _ in 0..200 {
        let (snap, target) = array().new_tree(&mut runner).unwrap().current();
        with_smart += snap
            .drives
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                *i != target && d.member.is_some() && matches!(d.smart, Some(Smart::Read { .. }))
            })
            .count();
    }
    assert!(with_smart > 50, "{with_smart}");
}
