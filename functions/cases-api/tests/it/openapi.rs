//! `docs/openapi.yaml` itself: an OpenAPI 3.1 document whose references resolve, whose
//! routes are exactly the handler's, whose error codes are those of `docs/errors.md`,
//! and whose check (used on every response of every test) rejects what does not conform.

use crate::common;

use std::collections::BTreeSet;

use common::openapi::spec;
use common::*;
use gateway_runtime::{ErrorCode, Surface};
use serde_json::{Value, json};

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = &spec().doc;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    assert!(refs.len() > 50);
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("only local references: {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} points nowhere");
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        spec().validator(schema).unwrap_or_else(|e| panic!("schema {name}: {e}"));
    }

    // Callers authenticate to API Gateway with IAM (SigV4), on every route.
    let sigv4 = &doc["components"]["securitySchemes"]["sigv4"];
    assert_eq!(sigv4["type"], "apiKey");
    assert_eq!(sigv4["in"], "header");
    assert_eq!(sigv4["name"], "Authorization");
    assert_eq!(sigv4["x-amazon-apigateway-authtype"], "awsSigv4");
    assert_eq!(doc["security"], json!([{"sigv4": []}]));

    // The page bound is the store's.
    let limit = doc["paths"]["/v1/cases/{caseSystemId}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit is documented");
    assert_eq!(limit["schema"]["maximum"], gateway_store::MAX_TIMELINE_PAGE);
}

#[test]
fn the_examples_in_the_document_conform_to_their_schemas() {
    let doc = &spec().doc;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op.pointer("/requestBody/content/application~1json") else { continue };
            for (name, example) in content["examples"].as_object().into_iter().flatten() {
                let result = spec().validate(&content["schema"], &example["value"]);
                assert!(result.is_ok(), "{method} {template} example {name}: {result:?}");
                // The example is also what the handler accepts.
                let value = &example["value"];
                let accepted = match content["schema"]["$ref"].as_str() {
                    Some("#/components/schemas/NewCase") => {
                        gateway_cabital::validate_new_case(value, gateway_runtime::now().date()).map(drop)
                    }
                    Some("#/components/schemas/DecisionRequest") => gateway_cabital::validate_decision(value).map(drop),
                    other => panic!("{method} {template}: no handler check for an example of {other:?}"),
                };
                accepted.unwrap_or_else(|e| panic!("the example {name} is refused: {e:?}"));
            }
        }
    }
}

#[tokio::test]
async fn the_documented_routes_are_the_handlers_routes() {
    let expected: Vec<(String, String)> = [
        ("DELETE", "/v1/cases/{caseSystemId}/ogs"),
        ("DELETE", "/v1/cases/{caseSystemId}/personal-data"),
        ("GET", "/v1/cases"),
        ("GET", "/v1/cases/{caseSystemId}"),
        ("GET", "/v1/cases/{caseSystemId}/evidence"),
        ("POST", "/v1/cases"),
        ("POST", "/v1/cases/{caseSystemId}/decision"),
        ("POST", "/v1/cases/{caseSystemId}/ogs"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(spec().operations(), expected);

    // Every documented operation is served; every other method on a documented path is a 405.
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let id = uuid::Uuid::new_v4().to_string();
    let templates: BTreeSet<&String> = expected.iter().map(|(_, t)| t).collect();
    for template in templates {
        let path = template.replace("{caseSystemId}", &id);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let event = Event::fixture("get-case.json")
                .with_path(&path)
                .with_method(method)
                .with_header("content-type", Some("application/json"))
                .with_body("{}");
            let resp = send(&app, &event).await;
            let documented = expected.contains(&(method.to_owned(), template.clone()));
            if documented {
                assert!(
                    !matches!(resp.status, 404 | 405) || resp.code() == "case_not_found",
                    "{method} {path}: {}",
                    resp.text
                );
            } else {
                resp.expect_problem(405, "method_not_allowed");
            }
        }
    }
}

/// (status, code) of each row of a section of `docs/errors.md` (the code column may
/// hold several codes; rows without one, like the webhook's 200, are left out).
fn documented_codes(section_title: &str) -> BTreeSet<(u16, String)> {
    let errors_md = std::fs::read_to_string(format!("{}/../../docs/errors.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = errors_md.split(section_title).nth(1).unwrap().split("\n## ").next().unwrap();
    let mut documented = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| status") && !l.starts_with("|---")) {
        let cells: Vec<&str> = row.split('|').collect();
        let status: u16 = cells[1].trim().parse().unwrap();
        for (i, part) in cells[2].split('`').enumerate() {
            if i % 2 == 1 {
                documented.insert((status, part.to_owned()));
            }
        }
    }
    documented
}

/// (status, code) of every code answered on `surface`, from the one table.
fn table_codes(surface: Surface) -> BTreeSet<(u16, String)> {
    ErrorCode::ALL
        .iter()
        .filter(|c| c.surfaces().contains(&surface))
        .map(|c| (c.status(), c.as_str().to_owned()))
        .collect()
}

fn schema_codes(schema: &str) -> BTreeSet<String> {
    spec().doc["components"]["schemas"][schema]["properties"]["code"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} lists its codes"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_error_code_is_in_errors_md_and_the_openapi_document_and_nothing_else_is() {
    let codes = |set: &BTreeSet<(u16, String)>| set.iter().map(|(_, c)| c.clone()).collect::<BTreeSet<_>>();
    let api = table_codes(Surface::CasesApi);
    assert_eq!(documented_codes("## Cases API"), api, "docs/errors.md, Cases API: (status, code)");
    assert_eq!(schema_codes("Problem"), codes(&api), "docs/openapi.yaml, Problem.code");
    let webhook = table_codes(Surface::Webhook);
    assert_eq!(documented_codes("## Webhook"), webhook, "docs/errors.md, Webhook: (status, code)");
    assert_eq!(schema_codes("WebhookProblem"), codes(&webhook), "docs/openapi.yaml, WebhookProblem.code");
}

/// Every `{status: {const: N}, code: {const | enum}}` pair in the document.
fn status_and_codes<'a>(v: &'a Value, out: &mut Vec<(u64, Vec<&'a str>)>) {
    match v {
        Value::Object(m) => {
            if let (Some(status), Some(code)) =
                (m.get("status").and_then(|s| s["const"].as_u64()), m.get("code").filter(|c| c.is_object()))
            {
                let listed = match (code.get("const"), code.get("enum")) {
                    (Some(c), _) => vec![c.as_str().unwrap()],
                    (None, Some(Value::Array(e))) => e.iter().map(|c| c.as_str().unwrap()).collect(),
                    _ => vec![],
                };
                out.push((status, listed));
            }
            m.values().for_each(|v| status_and_codes(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| status_and_codes(v, out)),
        _ => {}
    }
}

#[test]
fn the_documents_responses_give_each_code_its_status() {
    let mut pairs = Vec::new();
    status_and_codes(&spec().doc, &mut pairs);
    assert!(pairs.len() > 10, "{pairs:?}");
    for (status, codes) in pairs {
        for code in codes {
            let known = ErrorCode::ALL.iter().find(|c| c.as_str() == code).unwrap_or_else(|| panic!("{code}"));
            assert_eq!(u64::from(known.status()), status, "{code}");
        }
    }
}

/// `resp` with its body replaced by `body`.
fn with_body(resp: &Resp, body: Value) -> Resp {
    Resp { text: body.to_string(), json: body, ..resp.clone() }
}

#[tokio::test]
async fn responses_that_do_not_conform_fail_the_check() {
    let h = gateway_support::harness(|_| {}).await;
    let app = app(&h);
    let created = send(&app, &Event::fixture("create-case.json")).await;
    created.expect(201);
    let id = created.json["caseSystemId"].as_str().unwrap().to_owned();
    send(&app, &Event::for_case("ogs-on.json", &id)).await.expect(200);
    let got = send(&app, &Event::for_case("get-case.json", &id)).await;
    got.expect(200);
    let s = spec();
    assert_eq!(s.check("POST", "/v1/cases", &created), Ok(()));
    assert_eq!(s.check("GET", &format!("/v1/cases/{id}"), &got), Ok(()));

    // Sets (adding it if need be) or removes the value at `pointer`.
    let mutate = |resp: &Resp, pointer: &str, value: Option<Value>| {
        let mut body = resp.json.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = body.pointer_mut(parent).unwrap_or_else(|| panic!("{pointer}")).as_object_mut().unwrap();
        match value {
            Some(v) => parent.insert(key.to_owned(), v),
            None => parent.remove(key),
        };
        with_body(resp, body)
    };
    let create_bad = [
        ("no caseSystemId", mutate(&created, "/caseSystemId", None)),
        ("caseSystemId not a UUID", mutate(&created, "/caseSystemId", Some(json!("case-1")))),
        ("replayed not a boolean", mutate(&created, "/replayed", Some(json!("no")))),
        ("unknown status", mutate(&created, "/case/status", Some(json!("MAYBE")))),
        ("unknown suggestion", mutate(&created, "/case/suggestion", Some(json!("ACCEPT")))),
        ("createdAt not a time", mutate(&created, "/case/createdAt", Some(json!("yesterday")))),
        ("version 0", mutate(&created, "/case/version", Some(json!(0)))),
        ("externalCaseId too long", mutate(&created, "/case/externalCaseId", Some(json!("x".repeat(37))))),
        ("an undocumented field", mutate(&created, "/case/fullName", Some(json!("John Doe")))),
        ("a required field missing", mutate(&created, "/case/needsRefresh", None)),
        ("undocumented status", Resp { status: 202, ..created.clone() }),
        ("wrong content type", {
            let mut r = created.clone();
            r.headers.insert("content-type".into(), "text/plain".into());
            r
        }),
    ];
    for (what, resp) in &create_bad {
        assert!(s.check("POST", "/v1/cases", resp).is_err(), "{what} passed the check");
    }

    let path = format!("/v1/cases/{id}");
    let get_bad = [
        ("no nextCursor", mutate(&got, "/nextCursor", None)),
        ("an event of an unknown kind", mutate(&got, "/timeline/0/kind", Some(json!("DELETED")))),
        ("OGS_ON with details", mutate(&got, "/timeline/1/details", Some(json!({"by": "someone"})))),
        ("CREATED without what was sent", mutate(&got, "/timeline/0/details/submitted/fullName", None)),
        (
            "CREATED with a bad date of birth",
            mutate(&got, "/timeline/0/details/submitted/individualInfo/dob", Some(json!("02/02/2002"))),
        ),
        ("liveChanged not a boolean", mutate(&got, "/liveChanged", Some(json!("yes")))),
    ];
    for (what, resp) in &get_bad {
        assert!(s.check("GET", &path, resp).is_err(), "{what} passed the check");
    }

    // Problems: their own schema, the route's codes, and the headers.
    let unavailable = with_body(
        &created,
        json!({"type": "urn:cabital-kyc-gateway:problem:cabital_unavailable", "title": "Cabital is unavailable", "status": 503, "code": "cabital_unavailable", "retryAfterSeconds": 5}),
    );
    let unavailable = Resp {
        status: 503,
        headers: [
            ("content-type".to_owned(), "application/problem+json".to_owned()),
            ("retry-after".to_owned(), "5".to_owned()),
        ]
        .into(),
        ..unavailable
    };
    assert_eq!(s.check("POST", "/v1/cases", &unavailable), Ok(()));
    let problem_bad = [
        ("503 without Retry-After", {
            let mut r = unavailable.clone();
            r.headers.remove("retry-after");
            r
        }),
        ("Retry-After not seconds", {
            let mut r = unavailable.clone();
            r.headers.insert("retry-after".into(), "soon".into());
            r
        }),
        ("a code this route does not answer", mutate(&unavailable, "/code", Some(json!("case_not_found")))),
        ("an unknown code", mutate(&unavailable, "/code", Some(json!("oops")))),
        ("status disagrees", mutate(&unavailable, "/status", Some(json!(500)))),
        ("type does not name the code", mutate(&unavailable, "/type", Some(json!("about:blank")))),
        ("an undocumented field", mutate(&unavailable, "/stack", Some(json!("at src/lib.rs:10")))),
    ];
    for (what, resp) in &problem_bad {
        assert!(s.check("POST", "/v1/cases", resp).is_err(), "{what} passed the check");
    }
    // A validation failure must list its fields.
    let invalid = send(&app, &Event::fixture("create-case-invalid.json")).await;
    assert_eq!(s.check("POST", "/v1/cases", &invalid), Ok(()));
    assert!(s.check("POST", "/v1/cases", &mutate(&invalid, "/errors", None)).is_err());
    assert!(s.check("POST", "/v1/cases", &mutate(&invalid, "/errors", Some(json!([])))).is_err());
    assert!(s.check("POST", "/v1/cases", &mutate(&invalid, "/errors/0/code", Some(json!("bad")))).is_err());

    // Off the documented routes, only the router's 404 and 405 problems.
    assert!(s.check("GET", "/v1/elsewhere", &created).is_err());
}
