//! A FHIRPath subset: the simple paths this adapter reports (`Bundle.entry[3].resource.name[0].given[0]`),
//! resolved in a JSON resource. Lets tests and tools check an `OperationOutcome`'s
//! expressions name elements that exist in the submitted Bundle.

use serde_json::Value;

/// The element a path names: the root type's name first, then `.field` and `[index]` steps.
/// `None` when the path is not of this subset or names nothing in `root`.
pub fn resolve<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut steps = path.split('.');
    let ty = steps.next()?;
    if root.get("resourceType").and_then(Value::as_str) != Some(ty) {
        return None;
    }
    let mut at = root;
    for step in steps {
        let (field, rest) = match step.find('[') {
            Some(i) => (&step[..i], &step[i..]),
            None => (step, ""),
        };
        if field.is_empty() {
            return None;
        }
        at = at.get(field)?;
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let n: usize = r[..end].parse().ok()?;
            at = at.as_array()?.get(n)?;
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use serde_json::json;

    #[test]
    fn resolves_fields_and_indexes_and_refuses_what_is_not_there() {
        let b = json!({"resourceType": "Bundle", "entry": [{"resource": {"name": [{"given": ["A", "B"]}]}}]});
        assert_eq!(resolve(&b, "Bundle"), Some(&b));
        assert_eq!(
            resolve(&b, "Bundle.entry[0].resource.name[0].given[1]"),
            Some(&json!("B"))
        );
        assert!(resolve(&b, "Bundle.entry[1]").is_none());
        assert!(resolve(&b, "Bundle.entry[0].resource.name[0].family").is_none());
        assert!(resolve(&b, "Patient.entry").is_none());
        assert!(resolve(&b, "Bundle.entry[x]").is_none());
        assert!(resolve(&b, "Bundle.entry[0]junk").is_none());
    }
}
