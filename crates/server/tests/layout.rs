//! The layout of `crates/server/src` is a house without circles: reading the sources, no
//! module imports one that (directly or through others) imports it back, transports and apps
//! never import each other, every source file of the workspace stays under 500 lines, and each
//! `lib.rs` names all of its modules in its opening map. A change that breaks one of these fails
//! here with the offending files named.
//!
//! The graph is read from the source text: every `crate::…`, `super::…` and `self::…` path, and
//! every `use` of a child module by its bare name, is an edge from the file's module to the
//! longest module prefix of the path. Comments (including doc links) are ignored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest source file allowed anywhere in the workspace.
const MAX_LINES: usize = 500;

fn server_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `["a", "b"]`, `src/a/mod.rs` → `["a"]`, `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "main.rs" if parts.is_empty() => return None,
        "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    Some(parts)
}

/// The source without comments (whole-line `//` comments and the tail of a line after ` // `)
/// and without its inline test module, whose `super` is the file's module rather than its
/// parent (test code cannot make the production graph circular anyway).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| match l.find(" // ") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands one `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .flat_map(expand)
        .map(|i| format!("{prefix}{i}"))
        .collect()
}

/// Every path the code names that starts at `crate`, `super`, `self` or a child module.
fn paths_in(code: &str, children: &BTreeSet<String>) -> Vec<String> {
    let mut paths = Vec::new();
    // `use` statements, with their trees expanded.
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        rest = &rest[i + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(end) = rest.find(';') else { break };
        for path in expand(rest[..end].trim_start_matches("pub ")) {
            let first = path.split("::").next().unwrap_or_default();
            if children.contains(first) {
                paths.push(format!("self::{path}"));
            } else if matches!(first, "crate" | "super" | "self") {
                paths.push(path);
            }
        }
    }
    // Qualified paths anywhere (in `use` or in code).
    for root in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(i) = rest.find(root) {
            let before = rest[..i].chars().last();
            rest = &rest[i..];
            let len = rest
                .char_indices()
                .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(rest.len(), |(j, _)| j);
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                paths.push(rest[..len].trim_end_matches(':').to_owned());
            }
            rest = &rest[root.len()..];
        }
    }
    paths
}

/// The module a path points into: the longest prefix that is a module.
fn resolve(from: &[String], path: &str, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut segs = path.split("::");
    let mut base: Vec<String> = match segs.next()? {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    for seg in segs {
        match seg {
            "super" => {
                base.pop()?;
            }
            _ => {
                let mut next = base.clone();
                next.push(seg.to_owned());
                if !modules.contains(&next) {
                    break;
                }
                base = next;
            }
        }
    }
    Some(base)
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The module graph of `crates/server/src`: module → the modules it imports.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let src = server_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mods: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .filter_map(|f| Some((module_of(&src, f)?, f.clone())))
        .collect();
    let modules: BTreeSet<Vec<String>> = mods.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, file) in &mods {
        let code = code_of(&fs::read_to_string(file).unwrap());
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        let targets: BTreeSet<Vec<String>> = paths_in(&code, &children)
            .iter()
            .filter_map(|p| resolve(module, p, &modules))
            .filter(|t| t != module)
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(name(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn the_reader_sees_real_edges() {
    // Guards the reader itself: edges that are known to exist must be found, so the checks
    // below cannot pass on an empty graph.
    let g = graph();
    let has = |from: &str, to: &str| {
        let from: Vec<String> = from.split("::").map(str::to_owned).collect();
        let to: Vec<String> = to.split("::").map(str::to_owned).collect();
        g.get(&from).is_some_and(|t| t.contains(&to))
    };
    assert!(has("transports::ws", "commands::client"));
    assert!(has("apps::chat", "node::scope"));
    assert!(has("router", "transports::ws"));
    assert!(g.len() > 30, "only {} modules read", g.len());
    assert_eq!(
        expand("crate::a::{b, c::{d, e}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let found = cycles(&graph());
    assert!(found.is_empty(), "import cycles among modules: {found:?}");
}

#[test]
fn transports_and_apps_never_import_each_other() {
    let mut crossings = Vec::new();
    for (from, targets) in graph() {
        for to in targets {
            let (f, t) = (
                from.first().map(String::as_str),
                to.first().map(String::as_str),
            );
            if matches!(
                (f, t),
                (Some("transports"), Some("apps")) | (Some("apps"), Some("transports"))
            ) {
                crossings.push(format!("{} -> {}", name(&from), name(&to)));
            }
        }
    }
    assert!(crossings.is_empty(), "sibling imports: {crossings:?}");
}

#[test]
fn every_source_file_is_under_500_lines() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in fs::read_dir(&crates).unwrap().flatten() {
        rust_files(&dir.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "only {} files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = fs::read_to_string(f).ok()?.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

#[test]
fn each_lib_rs_maps_all_of_its_modules() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut missing = Vec::new();
    for dir in fs::read_dir(&crates).unwrap().flatten() {
        let lib = dir.path().join("src/lib.rs");
        let Ok(text) = fs::read_to_string(&lib) else {
            continue;
        };
        let map: String = text
            .lines()
            .filter(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        for line in text.lines() {
            let line = line.trim();
            let Some(module) = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
                .and_then(|m| m.strip_suffix(';'))
            else {
                continue;
            };
            if !map.contains(&format!("[`{module}`]")) && !map.contains(&format!("`{module}`")) {
                missing.push(format!("{}: {module}", lib.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules missing from their lib.rs map: {missing:?}"
    );
}
