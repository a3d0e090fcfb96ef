//! The repository stands on its own: every relative link in a tracked Markdown file resolves to
//! a file in the repository, no link or path reaches outside it, and no document names a Markdown
//! file that a clone does not have.

use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The tracked files, from git (an untracked file a link happens to hit must not make it pass).
fn tracked(root: &Path) -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `base` joined with `rel`, normalised lexically; `None` when it climbs above the root.
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let start = if rel.starts_with('/') {
        PathBuf::new()
    } else {
        base.to_path_buf()
    };
    for c in start.join(rel.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn is_external(url: &str) -> bool {
    url.starts_with('#') || url.contains("://") || url.starts_with("mailto:")
}

/// Every problem with the links and paths in one Markdown document at `path` (repo-relative).
fn problems(path: &str, text: &str, files: &[String]) -> Vec<String> {
    let exists = |p: &Path| {
        let p = p.to_string_lossy();
        let dir = format!("{}/", p.trim_end_matches('/'));
        files.iter().any(|f| *f == p || f.starts_with(&dir))
    };
    let base = Path::new(path).parent().unwrap_or(Path::new(""));
    let mut found = Vec::new();
    for event in Parser::new(text) {
        let (url, what) = match &event {
            Event::Start(Tag::Link { dest_url, .. }) => (dest_url.to_string(), "link"),
            Event::Start(Tag::Image { dest_url, .. }) => (dest_url.to_string(), "image"),
            _ => continue,
        };
        if is_external(&url) {
            continue;
        }
        let target = url.split(['#', '?']).next().unwrap_or_default();
        match resolve(base, target) {
            None => found.push(format!(
                "{path}: {what} `{url}` reaches outside the repository"
            )),
            Some(p) if !exists(&p) => found.push(format!(
                "{path}: {what} `{url}` does not resolve to a tracked file"
            )),
            Some(_) => {}
        }
    }
    // Paths in prose and code: `../x` climbing out of the repository, and named `.md` documents
    // that the repository does not hold (a reader cannot open them).
    for (n, line) in text.lines().enumerate() {
        // A shell line that starts with `cd DIR` resolves its paths from DIR.
        let here = line
            .split("cd ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|dir| resolve(base, dir))
            .unwrap_or_else(|| base.to_path_buf());
        for (i, _) in line.match_indices("../") {
            let start = line[..i]
                .rfind(|c: char| c.is_whitespace() || "`(\"'<[=".contains(c))
                .map_or(0, |j| j + 1);
            let word: String = line[start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"`)\"'>]".contains(*c))
                .collect();
            if resolve(&here, &word).is_none() {
                found.push(format!(
                    "{path}:{}: path `{word}` reaches outside the repository",
                    n + 1
                ));
            }
        }
        for word in line.split(|c: char| c.is_whitespace() || "`()[]\"'<>,;*".contains(c)) {
            let word = word.trim_end_matches([':', '.']);
            if !word.ends_with(".md") || word.contains("://") {
                continue;
            }
            let name = word.rsplit('/').next().unwrap_or(word);
            let here = resolve(base, word).is_some_and(|p| exists(&p));
            let anywhere = files.iter().any(|f| f.rsplit('/').next() == Some(name));
            if !here && !anywhere {
                found.push(format!(
                    "{path}:{}: names `{word}`, which is not in the repository",
                    n + 1
                ));
            }
        }
    }
    found
}

#[test]
fn every_relative_link_resolves_inside_the_repository() {
    let root = repo_root();
    let files = tracked(&root);
    let mut found = Vec::new();
    for md in files.iter().filter(|f| f.ends_with(".md")) {
        let text = std::fs::read_to_string(root.join(md)).unwrap();
        found.extend(problems(md, &text, &files));
    }
    assert!(
        found.is_empty(),
        "broken or outside links:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_catches_each_kind_of_bad_link() {
    let files = vec!["README.md".to_owned(), "docs/a.md".to_owned()];
    let ok = "[a](docs/a.md) [b](docs/a.md#x) [c](https://example.org/x.md) [d](#top) [e](docs)";
    assert!(problems("README.md", ok, &files).is_empty());
    assert!(problems("docs/a.md", "[r](../README.md)", &files).is_empty());
    assert!(problems("README.md", "(cd infra && ls ../target/x)", &files).is_empty());
    for bad in [
        "[x](docs/missing.md)",
        "[x](../shared/uk-rules.md)",
        "![x](docs/screenshots/none.png)",
        "[x]: ../../outside\n\nsee [x]",
        "see `../shared/notes`",
        "see `docs/../../shared/notes`",
        "(cd infra && ls ../../x)",
        "as `uk-rules.md` §3 says",
    ] {
        assert!(
            !problems("README.md", bad, &files).is_empty(),
            "not caught: {bad}"
        );
    }
}

#[test]
fn the_cli_reference_is_generated_from_the_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .args(["dev", "cli-reference"])
        .env_remove("RXBRIDGE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = std::fs::read_to_string(repo_root().join("docs/cli.md")).unwrap();
    assert_eq!(
        doc,
        String::from_utf8(out.stdout).unwrap(),
        "docs/cli.md is stale: run `cargo run -q -- dev cli-reference > docs/cli.md`"
    );
}
