//! No import loop inside `runbook/`: the files of this folder, read as
//! text, name each other (`crate::runbook::x`) only in one direction. And
//! none between the crate's top-level modules (`crate::x`, every file of a
//! module folder counted as the module).
//!
//! Test code is left out (a `#[cfg(test)]` module may load a whole runbook
//! to test one check), and so are comments (a doc link is no import).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The runbook files each file's non-test code names, by file stem.
fn imports(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    let entries = std::fs::read_dir(dir).expect("the runbook folder can be listed");
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "rs") || stem.ends_with("_tests") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a runbook source file can be read");
        let code: String = text
            .lines()
            .take_while(|l| l.trim() != "#[cfg(test)]")
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut names = BTreeSet::new();
        for (at, _) in code.match_indices("crate::runbook::") {
            let rest = &code[at + "crate::runbook::".len()..];
            let words: Vec<&str> = match rest.strip_prefix('{') {
                // `crate::runbook::{canary, preflight, steps}`: each first
                // path segment in the group.
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .filter_map(|item| item.trim().split("::").next())
                    .collect(),
                None => vec![rest],
            };
            for word in words {
                let name: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != stem {
                    names.insert(name);
                }
            }
        }
        graph.insert(stem.to_string(), names);
    }
    graph
}

/// Every file that can reach itself, with the path it takes.
fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in graph.keys() {
        // Depth-first from `start`, remembering how each file was reached.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut todo: Vec<&str> = vec![start.as_str()];
        while let Some(at) = todo.pop() {
            for next in graph.get(at).into_iter().flatten() {
                if next == start {
                    let mut path = vec![start.clone(), at.to_string()];
                    let mut back = at;
                    while let Some(prev) = came_from.get(back) {
                        path.insert(1, prev.to_string());
                        back = prev;
                    }
                    path.dedup();
                    path.push(start.clone());
                    found.push(path);
                    todo.clear();
                    break;
                }
                if next != start && !came_from.contains_key(next.as_str()) {
                    came_from.insert(next.as_str(), at);
                    todo.push(next.as_str());
                }
            }
        }
    }
    found
}

#[test]
fn no_import_loop_inside_runbook() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runbook");
    let graph = imports(&dir);
    assert!(graph.len() > 10, "read too few files: {graph:?}");
    let found = loops(&graph);
    assert!(
        found.is_empty(),
        "import loops in src/runbook/:\n{}",
        found
            .iter()
            .map(|l| l.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_import_loop_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("a.rs", "use crate::runbook::b::B;\n");
    write(
        "b.rs",
        "use crate::runbook::{c, d::D};\n// crate::runbook::a in a comment\n",
    );
    write("c.rs", "fn f() { crate::runbook::a::g() }\n");
    write(
        "d.rs",
        "#[cfg(test)]\nmod tests { use crate::runbook::a; }\n",
    );
    write("a_tests.rs", "use crate::runbook::a;\n");
    let graph = imports(dir.path());
    assert_eq!(graph["b"], ["c", "d"].map(String::from).into());
    assert!(graph["d"].is_empty());
    assert!(!graph.contains_key("a_tests"));
    let found = loops(&graph);
    assert!(
        found.contains(&["a", "b", "c", "a"].map(String::from).to_vec()),
        "{found:?}"
    );
}

/// The top-level modules each top-level module's non-test code names.
fn top_level_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src/ can be listed") {
        let path = entry.expect("a folder entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.is_dir()
            || (path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main")
        {
            modules.insert(stem.to_string());
        }
    }
    fn files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("a module folder can be listed") {
                files(&entry.expect("a folder entry").path(), out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if stem != "tests" && !stem.ends_with("_tests") && !stem.starts_with("tests_") {
                out.push(path.to_path_buf());
            }
        }
    }
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut paths = Vec::new();
        files(&src.join(format!("{module}.rs")), &mut paths);
        files(&src.join(module), &mut paths);
        let mut names = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("a source file can be read");
            let code: String = text
                .lines()
                .take_while(|l| l.trim() != "#[cfg(test)]")
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) && &name != module {
                    names.insert(name);
                }
            }
        }
        graph.insert(module.clone(), names);
    }
    graph
}

#[test]
fn no_import_loop_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = top_level_imports(&src);
    assert!(graph.len() > 20, "read too few modules: {graph:?}");
    assert!(graph["engine"].contains("health"), "{graph:?}");
    let found = loops(&graph);
    assert!(
        found.is_empty(),
        "import loops between top-level modules:\n{}",
        found
            .iter()
            .map(|l| l.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
