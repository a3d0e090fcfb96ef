//! The EPS dispensing specification's schemas (`fixtures/eps/specification`, the NHS's files
//! unchanged), loaded for tests: a JSON Schema validator per request schema, and the elements
//! a schema marks required that are present in a message.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eps")
}

pub fn example(kind: &str, name: &str) -> Value {
    let path = fixtures().join("dispensing").join(kind).join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn examples(kind: &str, suffix: &str) -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("dispensing").join(kind))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), example(kind, &n)))
        .collect()
}

/// A schema file as JSON. `DispenseClaim.yaml` holds tab characters after some enum values,
/// which YAML forbids there; they are read as spaces (trailing, so the values are unchanged).
fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text.replace('\t', " "))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schemas() -> PathBuf {
    fixtures().join("specification/schemas")
}

struct Files;

impl Retrieve for Files {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let path = uri.path().as_str().trim_start_matches('/');
        Ok(load(&schemas().join(path)))
    }
}

/// The validator for a request schema: `file` under `schemas/`, with an optional fragment
/// (`#/components/schemas/Release`). OpenAPI 3.0 schemas are JSON Schema draft 4 plus
/// annotations the validator ignores.
pub fn validator(file: &str, fragment: &str) -> Validator {
    let root = serde_json::json!({ "$ref": format!("file:///{file}{fragment}") });
    jsonschema::options()
        .with_draft(Draft::Draft4)
        .with_retriever(Files)
        .build(&root)
        .unwrap()
}

/// Every schema error as `instance path: message`, as the validator reports it.
pub fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

/// A place where the published schema contradicts FHIR R4 and the NHS's own examples: an
/// error of `keyword` at an instance path matching `path` (`*` is one segment) whose message
/// contains `message` is the schema's fault, not the message's.
#[derive(Clone, Copy)]
pub struct Defect {
    pub path: &'static str,
    pub keyword: &'static str,
    pub message: &'static str,
    pub why: &'static str,
}

/// The errors that remain once the listed schema defects are set aside. A `oneOf`/`anyOf`
/// passes when one of its branches fails only on listed defects; otherwise its remaining
/// leaf errors are reported (those of the branch with the fewest).
pub fn residual_errors(v: &Validator, instance: &Value, defects: &[Defect]) -> Vec<String> {
    v.iter_errors(instance)
        .flat_map(|e| residual(&e, defects))
        .collect()
}

fn residual(e: &jsonschema::ValidationError<'_>, defects: &[Defect]) -> Vec<String> {
    use jsonschema::error::ValidationErrorKind as K;
    match e.kind() {
        K::OneOfNotValid { context } | K::AnyOf { context } => context
            .iter()
            .map(|branch| {
                branch
                    .iter()
                    .flat_map(|e| residual(e, defects))
                    .collect::<Vec<_>>()
            })
            // Report the branch this element is most likely meant for: one that does not
            // refuse its `url` / `resourceType` / `name`, with the fewest errors.
            .min_by_key(|errors| {
                let off_branch = errors.iter().any(|e| {
                    ["/url:", "/resourceType:", "/name:"]
                        .iter()
                        .any(|k| e.contains(k))
                        && e.contains("is not one of")
                });
                (off_branch, errors.len())
            })
            .unwrap_or_default(),
        kind => {
            let path = e.instance_path().to_string();
            let text = e.to_string();
            let known = defects.iter().any(|d| {
                d.keyword == kind.keyword() && glob(d.path, &path) && text.contains(d.message)
            });
            if known {
                Vec::new()
            } else {
                vec![format!("{path}: {text}")]
            }
        }
    }
}

fn glob(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| *p == "*" || p == s)
}

/// The JSON pointers of every element of `instance` that its schema marks `required`. Each
/// object is matched against every branch of a `oneOf`/`anyOf`/`allOf` whose discriminating
/// values (`resourceType`, `name`, `url`, `system` enums) it does not contradict.
pub fn required_paths(file: &str, fragment: &str, instance: &Value) -> BTreeSet<String> {
    let mut w = Walker {
        docs: HashMap::new(),
        out: BTreeSet::new(),
    };
    let root = serde_json::json!({ "$ref": format!("{file}{fragment}") });
    w.walk(&root, &schemas().join("_root"), instance, String::new());
    w.out
}

struct Walker {
    docs: HashMap<PathBuf, Value>,
    out: BTreeSet<String>,
}

impl Walker {
    fn resolve(&mut self, schema: &Value, base: &Path) -> (Value, PathBuf) {
        let (mut s, mut b) = (schema.clone(), base.to_path_buf());
        while let Some(r) = s.get("$ref").and_then(Value::as_str).map(str::to_owned) {
            let (file, frag) = r.split_once('#').unwrap_or((&r, ""));
            if !file.is_empty() {
                b = normalise(&b.parent().unwrap().join(file));
            }
            let doc = self
                .docs
                .entry(b.clone())
                .or_insert_with(|| load(&b))
                .clone();
            s = if frag.is_empty() {
                doc
            } else {
                doc.pointer(frag).unwrap_or_else(|| panic!("{r}")).clone()
            };
        }
        (s, b)
    }

    fn branches(&mut self, schema: &Value, base: &Path) -> Vec<(Value, PathBuf)> {
        let (s, b) = self.resolve(schema, base);
        let mut out = vec![(s.clone(), b.clone())];
        for k in ["oneOf", "anyOf", "allOf"] {
            for sub in s
                .get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                out.extend(self.branches(&sub, &b));
            }
        }
        out
    }

    fn fits(&mut self, schema: &Value, base: &Path, inst: &Value) -> bool {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return true;
        };
        for k in ["resourceType", "name", "url", "system"] {
            if let (Some(p), Some(v)) = (props.get(k), inst.get(k)) {
                let (p, _) = self.resolve(p, base);
                if let Some(allowed) = p.get("enum").and_then(Value::as_array)
                    && !allowed.contains(v)
                {
                    return false;
                }
            }
        }
        true
    }

    fn walk(&mut self, schema: &Value, base: &Path, inst: &Value, path: String) {
        for (s, b) in self.branches(schema, base) {
            if !self.fits(&s, &b, inst) {
                continue;
            }
            if let Some(obj) = inst.as_object() {
                for r in s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(k) = r.as_str().filter(|k| obj.contains_key(*k)) {
                        self.out.insert(format!("{path}/{k}"));
                    }
                }
                for (k, sub) in s
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(v) = obj.get(&k) {
                        self.walk(&sub, &b, v, format!("{path}/{k}"));
                    }
                }
            }
            if let (Some(items), Some(arr)) = (s.get("items"), inst.as_array()) {
                for (i, v) in arr.iter().enumerate() {
                    self.walk(items, &b, v, format!("{path}/{i}"));
                }
            }
        }
    }
}

fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}
