//! Printing the walk: step headers, key fields, timelines as tables.

use serde_json::Value;

/// An error and its sources, on one line (reqwest's own message hides the cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// `== [n/total] title ==...`
pub fn header(n: usize, total: usize, title: &str) {
    let head = format!("== [{n}/{total}] {title} ");
    let width = 88usize.saturating_sub(head.chars().count()).max(2);
    println!("\n{head}{}", "=".repeat(width));
}

/// An indented `key  value` line.
pub fn field(key: &str, value: impl std::fmt::Display) {
    println!("   {key:<16} {value}");
}

/// An indented line of prose.
pub fn note(text: impl std::fmt::Display) {
    println!("   {text}");
}

/// A checked outcome.
pub fn ok(text: impl std::fmt::Display) {
    println!("   ok: {text}");
}

/// A JSON string field, or `-`.
pub fn s<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// A JSON value at a key, as short text: strings bare, null as `-`.
pub fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A JSON string at a key, or `none`.
fn or_none(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or("none").to_owned()
}

/// `suggestion ("comment")`, or `none yet`.
pub fn suggestion(case: &Value) -> String {
    match (case.get("suggestion").and_then(Value::as_str), case.get("suggestionComment").and_then(Value::as_str)) {
        (Some(s), Some(c)) => format!("{s} (\"{c}\")"),
        (Some(s), None) => s.to_owned(),
        _ => "none yet".to_owned(),
    }
}

/// One timeline event's details, in a few words.
pub fn detail(event: &Value) -> String {
    let d = event.get("details").unwrap_or(&Value::Null);
    match s(event, "kind") {
        "CREATED" => {
            let submitted = d.get("submitted").unwrap_or(&Value::Null);
            let answered = d.get("response").unwrap_or(&Value::Null);
            format!(
                "submitted {} {}; Cabital answered suggestion {}",
                s(submitted, "screenType"),
                s(submitted, "externalCaseId"),
                or_none(answered, "suggestion"),
            )
        }
        "WEBHOOK" => {
            let body = d.get("body").unwrap_or(&Value::Null);
            let deliveries = d.get("deliveries").and_then(Value::as_u64).unwrap_or(0);
            format!(
                "caseSuggestion {} (\"{}\"), {deliveries} deliver{}",
                s(body, "caseSuggestion"),
                s(body, "comment"),
                if deliveries == 1 { "y" } else { "ies" }
            )
        }
        "UNVERIFIED_NOTICE" => {
            let deliveries = d.get("deliveries").and_then(Value::as_u64).unwrap_or(0);
            format!(
                "a hint, not read as Cabital's words ({}), {deliveries} deliver{}",
                s(d, "reason"),
                if deliveries == 1 { "y" } else { "ies" }
            )
        }
        "REFRESHED" | "RECONCILED" => {
            let changed: Vec<&str> =
                d.get("changed").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            if changed.is_empty() {
                "read Cabital's case: no change".to_owned()
            } else {
                format!(
                    "read Cabital's case: suggestion {} -> {} (changed: {})",
                    or_none(d, "fromSuggestion"),
                    text(d, "toSuggestion"),
                    changed.join(", ")
                )
            }
        }
        "DECISION" => match d.get("comment").and_then(Value::as_str) {
            Some(c) => format!("{} (\"{c}\")", text(d, "decision")),
            None => text(d, "decision"),
        },
        "OGS_ON" => "ongoing screening on".to_owned(),
        "OGS_OFF" => "ongoing screening off".to_owned(),
        _ => d.to_string(),
    }
}

/// A timeline as a table: at / kind / source / detail.
pub fn timeline(events: &[Value]) {
    let rows: Vec<[String; 4]> = events
        .iter()
        .map(|e| [s(e, "at").to_owned(), s(e, "kind").to_owned(), s(e, "source").to_owned(), detail(e)])
        .collect();
    let titles = ["AT (UTC)", "KIND", "SOURCE", "DETAIL"];
    let mut widths = titles.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        println!(
            "   {:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(titles);
    line(["-".repeat(widths[0]).as_str(), &"-".repeat(widths[1]), &"-".repeat(widths[2]), &"-".repeat(widths[3])]);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn details_in_words() {
        let webhook = json!({"kind": "WEBHOOK", "details": {"body": {"caseSuggestion": "SUGGEST_TO_ACCEPT", "comment": "No hit"}, "deliveries": 1}});
        assert_eq!(detail(&webhook), "caseSuggestion SUGGEST_TO_ACCEPT (\"No hit\"), 1 delivery");
        let notice = json!({"kind": "UNVERIFIED_NOTICE", "details": {"body": {"caseSuggestion": "SUGGEST_TO_ACCEPT"}, "deliveries": 2, "reason": "UNSIGNED"}});
        assert_eq!(detail(&notice), "a hint, not read as Cabital's words (UNSIGNED), 2 deliveries");
        let reconciled = json!({"kind": "RECONCILED", "details": {"fromSuggestion": null, "toSuggestion": "SUGGEST_TO_REJECT", "changed": ["suggestion", "suggestionComment"]}});
        assert_eq!(
            detail(&reconciled),
            "read Cabital's case: suggestion none -> SUGGEST_TO_REJECT (changed: suggestion, suggestionComment)"
        );
        let unchanged = json!({"kind": "REFRESHED", "details": {"changed": []}});
        assert_eq!(detail(&unchanged), "read Cabital's case: no change");
    }
}
