//! `rxbridge rules`: the compliance rules, as a table or as Markdown.

use rxbridge::Config;

pub fn run(config: Config, markdown: bool) -> anyhow::Result<()> {
    config.validate()?;
    if markdown {
        print!(
            "{}",
            rxbridge_domain::compliance::rules_markdown(&config.compliance)
        );
    } else {
        for r in rxbridge_domain::compliance::RULES {
            println!("{:<36} {:<6} {}", r.code, r.severity.as_str(), r.rule);
        }
    }
    Ok(())
}
