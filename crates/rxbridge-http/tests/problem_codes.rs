//! Every `Problem::new("code", …)` in the source names a code from the table; an unknown code
//! would silently answer 500.

fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

#[test]
fn every_problem_code_used_is_in_the_table() {
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let known: Vec<&str> = rxbridge_http::problem::CODES
        .iter()
        .map(|(c, _, _)| *c)
        .collect();
    let mut used = 0;
    for (path, text) in &files {
        // Unit tests may use unknown codes on purpose (to check the fallback).
        let code_part = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut rest = code_part;
        while let Some(i) = rest.find("Problem::new(") {
            rest = &rest[i + "Problem::new(".len()..];
            let arg = rest.trim_start();
            if let Some(quoted) = arg.strip_prefix('"') {
                let code = &quoted[..quoted.find('"').unwrap()];
                assert!(
                    known.contains(&code),
                    "{path}: Problem::new(\"{code}\") is not in problem::CODES"
                );
                used += 1;
            }
        }
    }
    assert!(
        used >= 10,
        "found only {used} uses; did the pattern change?"
    );
}
