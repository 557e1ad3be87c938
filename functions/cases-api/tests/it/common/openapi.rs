//! `docs/openapi.yaml`, read once, and the check of a real response against it.
//!
//! A response passes when its route and method are in the document, its status is
//! documented for them, its content type is the documented one, its body validates
//! against that schema (JSON Schema 2020-12, formats asserted), and the headers the
//! document marks required are there and well formed. A request on no documented
//! route or method (404 `route_not_found`, 405) must answer a `Problem`.

use std::sync::OnceLock;

use jsonschema::Draft;
use serde_json::{Value, json};

use super::Resp;

/// The document's location.
pub fn path() -> String {
    format!("{}/../../docs/openapi.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// The parsed document.
pub struct Spec {
    /// The document, as JSON.
    pub doc: Value,
}

/// The document, parsed once per test binary.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(path()).unwrap_or_else(|e| panic!("{}: {e}", path()));
        let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("docs/openapi.yaml is not YAML: {e}"));
        Spec { doc }
    })
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl Spec {
    /// Follows a local `$ref` (`#/a/b`) if `v` is one.
    pub fn resolve<'a>(&'a self, v: &'a Value) -> Result<&'a Value, String> {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').ok_or_else(|| format!("not a local $ref: {r}"))?;
                let target = self.doc.pointer(pointer).ok_or_else(|| format!("$ref {r} points nowhere"))?;
                self.resolve(target)
            }
            None => Ok(v),
        }
    }

    /// The documented path template matching a concrete path, e.g. `/v1/cases/{caseSystemId}`.
    pub fn template_for(&self, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        paths
            .keys()
            .find(|template| {
                let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
                parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(p, s)| (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s)
            })
            .cloned()
    }

    /// Every documented (method, path template), methods in upper case.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (template, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for m in METHODS {
                if item.get(m).is_some() {
                    out.push((m.to_ascii_uppercase(), template.clone()));
                }
            }
        }
        out.sort();
        out
    }

    /// A validator for a schema found in the document: the document's components are
    /// carried along so that its `$ref`s resolve.
    pub fn validator(&self, schema: &Value) -> Result<jsonschema::Validator, String> {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"].clone(),
            "allOf": [schema],
        });
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the schema does not compile: {e}"))
    }

    /// Validates `instance` against `schema`, listing every error.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let validator = self.validator(schema)?;
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("at {}: {e}", e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Checks a response to `method path` against the document.
    pub fn check(&self, method: &str, path: &str, resp: &Resp) -> Result<(), String> {
        // The document's paths are relative to the server: drop a stage or base-path
        // prefix and a trailing slash, as the handler does.
        let path = path.find("/v1/").map_or(path, |at| &path[at..]);
        let path = path.trim_end_matches('/');
        let operation = self
            .template_for(path)
            .and_then(|t| self.doc["paths"][&t].get(method.to_ascii_lowercase()).map(|op| (t, op)));
        let Some((template, operation)) = operation else {
            // No documented operation: only the router's own answers may come back.
            if !matches!(resp.status, 404 | 405) {
                return Err(format!("{method} {path} is not documented, yet answered {}", resp.status));
            }
            return self.check_body(&json!({"$ref": "#/components/schemas/Problem"}), "application/problem+json", resp);
        };
        let status = resp.status.to_string();
        let documented = operation["responses"]
            .get(&status)
            .ok_or_else(|| format!("status {status} is not documented for {method} {template}"))?;
        let documented = self.resolve(documented)?;

        for (name, header) in documented.get("headers").and_then(Value::as_object).into_iter().flatten() {
            let header = self.resolve(header)?;
            match resp.header(name) {
                None if header["required"] == true => return Err(format!("required header {name} is missing")),
                None => {}
                Some(value) => {
                    // Header values are text; the schemas here describe integers.
                    let typed = match value.parse::<i64>() {
                        Ok(n) if header["schema"]["type"] == "integer" => json!(n),
                        _ => json!(value),
                    };
                    self.validate(&header["schema"], &typed).map_err(|e| format!("header {name}: {e}"))?;
                }
            }
        }

        let content = documented.get("content").and_then(Value::as_object);
        match content {
            None => {
                if resp.text.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{status} is documented without a body, yet has one"))
                }
            }
            Some(content) => {
                let content_type = resp.header("content-type").ok_or("no Content-Type")?;
                let media = content
                    .get(content_type)
                    .ok_or_else(|| format!("Content-Type {content_type} is not documented for {status}"))?;
                self.check_body(&media["schema"], content_type, resp)
            }
        }
    }

    fn check_body(&self, schema: &Value, content_type: &str, resp: &Resp) -> Result<(), String> {
        if resp.header("content-type") != Some(content_type) {
            return Err(format!("Content-Type is {:?}, not {content_type}", resp.header("content-type")));
        }
        self.validate(schema, &resp.json).map_err(|e| format!("the body does not match its schema: {e}"))?;
        if content_type == "application/problem+json" {
            // What a schema cannot say: the body agrees with the response and with itself.
            if resp.json["status"] != resp.status {
                return Err(format!("the problem's status {} is not the response's", resp.json["status"]));
            }
            let code = resp.json["code"].as_str().unwrap_or_default();
            if resp.json["type"].as_str() != Some(&format!("urn:cabital-kyc-gateway:problem:{code}")) {
                return Err(format!("the problem's type {} does not name its code", resp.json["type"]));
            }
            let header = resp.header("retry-after").map(str::to_owned);
            let field = resp.json.get("retryAfterSeconds").map(Value::to_string);
            if header != field {
                return Err(format!("Retry-After {header:?} and retryAfterSeconds {field:?} disagree"));
            }
        }
        Ok(())
    }
}
