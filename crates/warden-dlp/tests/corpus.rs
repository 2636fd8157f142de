//! The sensitive and benign corpora (`corpus/*.tsv`), each value alone, in
//! prose and as a JSON field: detection per category and false positives.
//! Run with `--nocapture` for the table.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use warden_dlp::{Categories, Category, find, json};

fn read(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn category(label: &str) -> Category {
    match label {
        "aws_key" => Category::CloudKey,
        "github_token" | "gitlab_token" | "slack_token" | "stripe_key" => Category::Token,
        other => Category::from_name(other).unwrap(),
    }
}

fn json_field(value: &str) -> String {
    format!("{{\"id\":7,\"note\":{}}}", serde_json_string(value))
}

/// A JSON string literal (the corpus values hold no control characters;
/// backslashes are kept as written, as an upstream would send `\n`).
fn serde_json_string(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\\\""))
}

#[test]
fn every_category_is_found_and_benign_values_pass() {
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (label, value) in read("sensitive.tsv") {
        let want = category(&label);
        let alone = find(&value, Categories::ALL).iter().any(|f| f.category == want);
        let body = json_field(&value);
        let in_json = json::scan(&body, Categories::ALL)
            .unwrap()
            .iter()
            .any(|h| h.finding.category == want);
        let e = table.entry(want.name()).or_default();
        e.0 += usize::from(alone && in_json);
        e.1 += 1;
        if !(alone && in_json) {
            println!("missed {label}: {value}");
        }
    }
    println!("{:<14} {:>9}", "category", "detected");
    for (name, (hit, n)) in &table {
        println!("{name:<14} {hit:>4}/{n:<4}");
        assert!(hit * 100 >= n * 95, "{name}: {hit}/{n}");
    }
    let benign = read("benign.tsv");
    let mut flagged = 0;
    for (kind, value) in &benign {
        let body = json_field(value);
        let found = find(value, Categories::ALL);
        let in_json = json::scan(&body, Categories::ALL).unwrap();
        if !found.is_empty() || !in_json.is_empty() {
            flagged += 1;
            let what: Vec<&str> = found.iter().map(|f| f.category.name()).collect();
            println!("false positive {kind} {what:?}: {value}");
        }
    }
    println!("benign flagged: {flagged}/{}", benign.len());
    assert!(flagged * 100 <= benign.len(), "{flagged}/{}", benign.len());
}
