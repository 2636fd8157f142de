//! The labelled corpus (`corpus/attacks.tsv`, `corpus/benign.tsv`) through the
//! engine at the default level: detection per category and false positives,
//! printed as a table (`cargo test -p warden-waf --test corpus -- --nocapture`).
//! The same corpus goes through the running gateway in query, JSON and header
//! placements in `crates/warden/tests/injection_corpus.rs`.

use std::collections::BTreeMap;

use warden_waf::{Categories, Category, Field, Level, Scanner};

fn load(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (label, sample) = l.split_once('\t').unwrap_or_else(|| panic!("bad line: {l}"));
            (label.to_owned(), sample.to_owned())
        })
        .collect()
}

#[test]
fn corpus_detection_and_false_positives_at_the_default_level() {
    let scanner = Scanner::new(Level::default(), Categories::ALL);
    // Every sample sits in a field whose name marks it as a URL, so the SSRF
    // checks also run over the benign set.
    let field = Field {
        url_like: true,
        ..Field::default()
    };
    let attacks = load("attacks.tsv");
    let benign = load("benign.tsv");
    assert!(attacks.len() >= 300 && benign.len() >= 300);

    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut missed = Vec::new();
    for (label, sample) in &attacks {
        assert!(Category::from_name(label).is_some(), "unknown category {label}");
        let hit = scanner.scan(sample, field).is_some();
        let e = per.entry(label.clone()).or_default();
        e.0 += usize::from(hit);
        e.1 += 1;
        if !hit {
            missed.push(format!("{label}\t{sample}"));
        }
    }
    let false_positives: Vec<String> = benign
        .iter()
        .filter_map(|(kind, s)| {
            scanner
                .scan(s, field)
                .map(|f| format!("{kind}\t{s}\t→ {}/{}", f.category.name(), f.rule))
        })
        .collect();

    println!("category   detected / total");
    for (label, (hit, total)) in &per {
        println!(
            "{label:<10} {hit:>4} / {total:<4} {:>6.1}%",
            100.0 * *hit as f64 / *total as f64
        );
    }
    let fp_rate = 100.0 * false_positives.len() as f64 / benign.len() as f64;
    println!(
        "benign     {:>4} / {:<4} {fp_rate:>6.1}% false positives",
        false_positives.len(),
        benign.len()
    );
    for m in &missed {
        println!("missed: {m}");
    }
    for f in &false_positives {
        println!("false positive: {f}");
    }
    for (label, (hit, total)) in &per {
        assert!(*hit as f64 >= 0.95 * *total as f64, "{label}: {hit}/{total} detected");
    }
    assert!(fp_rate <= 1.0, "false positives {fp_rate:.1}%");
}

/// The held-out corpus (written by a different author who never saw the
/// detectors or the tuned corpus) measures how well the rules generalise.
#[test]
fn holdout_corpus_figures() {
    let scanner = Scanner::new(Level::default(), Categories::ALL);
    let field = Field {
        url_like: true,
        ..Field::default()
    };
    let attacks = load("holdout_attacks.tsv");
    let benign = load("holdout_benign.tsv");
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (label, sample) in &attacks {
        let hit = scanner.scan(sample, field).is_some();
        let e = per.entry(label.clone()).or_default();
        e.0 += usize::from(hit);
        e.1 += 1;
        if !hit {
            println!("held-out missed: {label}\t{sample}");
        }
    }
    let fps: Vec<_> = benign
        .iter()
        .filter_map(|(k, s)| scanner.scan(s, field).map(|f| (k, s, f)))
        .collect();
    for (k, s, f) in &fps {
        println!("held-out false positive: {k}\t{s}\t→ {}/{}", f.category.name(), f.rule);
    }
    let (hit, total) = per.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for (label, (h, t)) in &per {
        println!("held-out {label:<10} {h:>3} / {t}");
    }
    println!(
        "held-out detection {hit}/{total}, false positives {}/{}",
        fps.len(),
        benign.len()
    );
}
