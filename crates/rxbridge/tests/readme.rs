//! The README's rule table is generated from the rule source; this fails when they drift.
//! Regenerate with: cargo run -q -- rules --markdown

#[test]
fn readme_rules_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- rules:start -->\n")
        .expect("rules:start marker")
        + "<!-- rules:start -->\n".len();
    let end = readme.find("<!-- rules:end -->").expect("rules:end marker");
    let expected = rxbridge_domain::compliance::rules_markdown(&Default::default());
    assert_eq!(
        &readme[start..end],
        expected,
        "README rules table is stale: run `cargo run -q -- rules --markdown`"
    );
}
