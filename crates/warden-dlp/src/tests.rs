#![allow(clippy::unwrap_used)]

use super::*;

fn cats_of(text: &str) -> Vec<Category> {
    find(text, Categories::ALL).into_iter().map(|f| f.category).collect()
}

#[test]
fn a_luhn_valid_card_is_found_and_a_luhn_invalid_order_number_is_not() {
    assert_eq!(cats_of("card 4111 1111 1111 1111 on file"), [Category::Card]);
    assert_eq!(cats_of("4111-1111-1111-1111"), [Category::Card]);
    assert!(cats_of("order 4111111111111112").is_empty());
    // The fraction of a measurement is not a card, however Luhn comes out.
    assert!(cats_of(r#"{"latency_ms":0.4111111111111111}"#).is_empty());
    // Mixed separators are not how cards are written.
    assert!(cats_of("4111 1111-1111 1111").is_empty());
}

#[test]
fn ibans_need_their_check_digits() {
    assert_eq!(cats_of("DE89 3704 0044 0532 0130 00"), [Category::Iban]);
    assert_eq!(cats_of("pay to GB82WEST12345698765432 please"), [Category::Iban]);
    assert!(cats_of("DE88 3704 0044 0532 0130 00").is_empty());
}

#[test]
fn national_ids_skip_numbers_never_issued() {
    assert_eq!(cats_of("ssn 123-45-6789"), [Category::NationalId]);
    assert!(cats_of("000-12-3456 and 666-12-3456 and 912-34-5678").is_empty());
    assert_eq!(cats_of("NINO AB123456C"), [Category::NationalId]);
}

#[test]
fn secrets_of_every_kind_are_found() {
    assert_eq!(cats_of("AKIAIOSFODNN7EXAMPLE"), [Category::CloudKey]);
    assert_eq!(cats_of("ghp_0123456789abcdefghijABCDEFGHIJ012345"), [Category::Token]);
    assert_eq!(cats_of("sk_live_51Habcdefghijklmnop"), [Category::Token]);
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
    assert_eq!(cats_of(jwt), [Category::Jwt]);
    let pem = "x -----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY----- y";
    let found = find(pem, Categories::ALL);
    assert_eq!(found.len(), 1);
    assert_eq!(&pem[found[0].range.clone()], &pem[2..pem.len() - 2]);
}

#[test]
fn masking_keeps_the_tail_and_separators_and_quotes_bare_tokens() {
    assert_eq!(
        Action::Mask { keep: 4 }.replacement("4111 1111 1111 1111", false),
        "**** **** **** 1111"
    );
    assert_eq!(Action::Redact.replacement("hunter2", false), "[REDACTED]");
    assert_eq!(
        Action::Mask { keep: 4 }.replacement("4111111111111111", true),
        "\"************1111\""
    );
}

#[test]
fn json_scan_knows_keys_from_values_and_bare_numbers_from_strings() {
    let body = r#"{"user":{"name":"Ada","password":"hunter2","card":4111111111111111},"password_hint":"pet"}"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    let got: Vec<(Category, &str, bool)> = hits
        .iter()
        .map(|h| (h.finding.category, &body[h.finding.range.clone()], h.bare))
        .collect();
    assert_eq!(
        got,
        [
            (Category::SecretField, "hunter2", false),
            (Category::Card, "4111111111111111", true),
            (Category::SecretField, "pet", false),
        ]
    );
    assert!(json::scan("{\"a\":", Categories::ALL).is_none());
}

#[test]
fn json_scan_reads_past_escapes_and_raw_control_bytes_inside_strings() {
    // A raw tab and NUL (invalid JSON, but upstreams send it) and escaped
    // quotes before the secret: the walk still finds where each string ends.
    let body = "{\"note\":\"a\tb\u{0}c \\\"q\\\" d\",\"password\":\"hunter2\",\"x\":\"4111 1111 1111 1111\"}";
    let hits = json::scan(body, Categories::ALL).unwrap();
    let got: Vec<(Category, &str)> = hits
        .iter()
        .map(|h| (h.finding.category, &body[h.finding.range.clone()]))
        .collect();
    assert_eq!(
        got,
        [
            (Category::SecretField, "hunter2"),
            (Category::Card, "4111 1111 1111 1111")
        ]
    );
}

#[test]
fn secret_leaves_under_a_secret_named_object_count() {
    let body = r#"{"credentials":[{"api_key":"k1"}],"private_key":{"pem":"abc"},"next_page_token":"eyJwYWdlIjoyfQ"}"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    let got: Vec<&str> = hits.iter().map(|h| &body[h.finding.range.clone()]).collect();
    assert_eq!(got, ["k1", "abc"]);
}

#[test]
fn a_key_that_starts_like_the_previous_rows_next_key_is_read_as_itself() {
    // The walk tries the key that followed `id` last time (`pass`, no
    // secret) in place first; `password` starts the same way and must still
    // be read whole.
    let body = r#"[{"id":1,"pass":"ok","note":"a"},{"id":2,"password":"hunter2","note":"b"}]"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    let got: Vec<&str> = hits.iter().map(|h| &body[h.finding.range.clone()]).collect();
    assert_eq!(got, ["hunter2"]);
}

#[test]
fn field_names_mean_secrets_by_their_words() {
    for name in [
        "password",
        "passwordHash",
        "user_pwd",
        "apiKey",
        "API-KEY",
        "client_secret",
        "ssn",
        "hash",
        "pin",
    ] {
        assert!(names::is_secret_field(name), "{name}");
    }
    for name in [
        "content_hash",
        "sha256",
        "etag",
        "next_page_token",
        "spinner",
        "keyboard",
        "shipping",
        "description",
    ] {
        assert!(!names::is_secret_field(name), "{name}");
    }
}

#[test]
fn every_ascii_name_that_means_a_secret_holds_a_telling_fragment() {
    // `is_secret_field` and the JSON walk skip the word rules for an ASCII
    // name `maybe_telling` turns down: no secret or key-like name may slip
    // past it, in any case style. The words are the rules' own (a word added there is
    // tried here), the key-like ones, and a few neutral ones to pair them with.
    let mut words: Vec<&str> = names::SECRET_WORDS.to_vec();
    for (a, b) in names::SECRET_PAIRS {
        words.extend([*a, *b]);
    }
    words.extend([
        "hash",
        "salt",
        "signature",
        "credential",
        "credentials",
        "authorization",
        "user",
        "x",
        "mfa",
    ]);
    let mut candidates = Vec::new();
    for &a in &words {
        candidates.push(a.to_owned());
        candidates.push(a.to_uppercase());
        for &b in &words {
            for sep in ["_", "-", ".", ""] {
                candidates.push(format!("{a}{sep}{b}"));
                candidates.push(format!("x-{a}{sep}{b}"));
            }
            let mut camel = b.to_owned();
            camel[..1].make_ascii_uppercase();
            candidates.push(format!("{a}{camel}"));
            candidates.push(format!("{}_{}", a.to_uppercase(), b.to_uppercase()));
        }
    }
    let mut meaningful = 0;
    for n in &candidates {
        if names::is_secret_field(n) || names::is_key_like(n) {
            meaningful += 1;
            assert!(names::maybe_telling(n), "{n}");
        }
    }
    assert!(meaningful > 1000, "{meaningful}");
}

#[test]
fn high_entropy_values_only_in_key_like_fields() {
    let body = r#"{"signing_key":"q8Zr2vLx9TmB4wKp7YdN3sHf","thumbnail_id":"q8Zr2vLx9TmB4wKp7YdN3sHf"}"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].finding.category, Category::SecretField);
    let body = r#"{"upload_token":"q8Zr2vLx9TmB4wKp7YdN3sHf","word_token":"aaaaaaaaaaaaaaaaaaaaaaaa"}"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].finding.category, Category::HighEntropy);
}

#[test]
fn log_lines_lose_cards_and_keys_but_keep_the_rest() {
    let line = r#"{"path":"/pay/4111111111111111","key":"AKIAIOSFODNN7EXAMPLE","who":"ada@example.com"}"#;
    let out = redact_log(line);
    assert!(
        !out.contains("4111111111111111") && !out.contains("AKIAIOSFODNN7EXAMPLE"),
        "{out}"
    );
    assert!(
        out.contains("[REDACTED:card]") && out.contains("ada@example.com"),
        "{out}"
    );
    assert!(matches!(redact_log("GET /health 200"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn stack_traces_are_recognised_and_prose_about_errors_is_not() {
    let java = "java.lang.NullPointerException: x\n\tat com.shop.Orders.get(Orders.java:42)\n";
    assert_eq!(stack::leak(java), Some("java"));
    let py = "Traceback (most recent call last):\n  File \"/app/views.py\", line 12, in get\nKeyError: 'id'";
    assert_eq!(stack::leak(py), Some("python"));
    assert_eq!(stack::leak("goroutine 1 [running]:\nmain.main()"), Some("go"));
    assert_eq!(
        stack::leak("You have an error in your SQL syntax near ''"),
        Some("database")
    );
    for benign in [
        "An exception was raised and we are looking into it.",
        "Our Java and Python SDKs handle errors for you.",
        "The Traceback tab shows recent calls",
        "at home (with family)",
    ] {
        assert_eq!(stack::leak(benign), None, "{benign}");
    }
}

#[test]
fn the_redacting_writer_sees_a_secret_split_across_writes() {
    use std::io::Write as _;
    let mut out = Vec::new();
    {
        let mut w = RedactingWriter::new(&mut out);
        w.write_all(b"key=AKIAIOSFOD").unwrap();
        w.write_all(b"NN7EXAMPLE ok\nnext 4111 1111 1111 1111").unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, "key=[REDACTED:cloud_key] ok\nnext [REDACTED:card]");
}

#[test]
fn full_width_digits_neither_panic_nor_count() {
    for text in [
        "AB１２CDEFGHIJKLM",
        "４１１１ １１１１ １１１１ １１１１",
        "GB８２WEST12345698765432",
    ] {
        assert!(
            find(text, Categories::ALL).iter().all(|f| f.category != Category::Iban),
            "{text}"
        );
        let _ = redact_log(text);
    }
}

#[test]
fn a_pem_block_ends_with_its_json_string() {
    let body = r#"[{"n":"-----BEGIN PRIVATE KEY-----\\"},{"n":"bob"},{"k":"-----END PRIVATE KEY-----"}]"#;
    let found = find(body, Categories::ALL);
    assert_eq!(found.len(), 1);
    let end = found[0].range.end;
    assert_eq!(&body[end..end + 3], "\"},", "stops at the string's closing quote");
}

#[test]
fn a_short_value_is_never_mostly_shown() {
    assert_eq!(Action::Mask { keep: 4 }.replacement("1234", false), "**34");
}

#[test]
fn a_negative_card_number_is_replaced_sign_and_all() {
    let body = r#"{"n":-4111111111111111}"#;
    let hits = json::scan(body, Categories::ALL).unwrap();
    assert_eq!(&body[hits[0].finding.range.clone()], "-4111111111111111");
    assert!(hits[0].bare);
}

#[test]
fn log_lines_lose_credentials_their_context_gives_away() {
    for (line, secret) in [
        ("db=postgres://app:S3cretPw@db.internal:5432/shop", "S3cretPw"),
        (r#"{"password":"hunter22","user":"ada"}"#, "hunter22"),
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
        ("Cookie: sessionid=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ] {
        let out = redact_log(line);
        assert!(!out.contains(secret) && out.contains("[REDACTED:credential]"), "{out}");
    }
    assert!(matches!(
        redact_log("password reset requested for ada"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn stack_traces_escaped_inside_json_are_recognised() {
    let java =
        r#"{"trace":"com.shop.OrderNotFoundException: 7\n\tat com.shop.OrderService.get(OrderService.java:42)"}"#;
    assert_eq!(stack::leak(java), Some("java"));
    let py = r#"{"error":"Traceback:\n  File \"/app/views.py\", line 3, in get"}"#;
    assert_eq!(stack::leak(py), Some("python"));
}

#[test]
fn the_value_of_a_name_value_pair_named_like_a_secret_is_a_secret() {
    let cats = |body: &str| -> Vec<(Category, String)> {
        json::scan(body, Categories::ALL)
            .unwrap()
            .into_iter()
            .map(|h| (h.finding.category, body[h.finding.range].to_owned()))
            .collect()
    };
    // Kubernetes-style env lists, value before or after the name, any case.
    let env = r#"{"env":[{"name":"DB_PASSWORD","value":"s3cr3t-pw"},{"value":"tok-9","Name":"api-key"},{"name":"LOG_LEVEL","value":"debug"}]}"#;
    assert_eq!(
        cats(env),
        [
            (Category::SecretField, "s3cr3t-pw".to_owned()),
            (Category::SecretField, "tok-9".to_owned())
        ]
    );
    // A bare value, and a parameter store's `Key`/`Value`.
    assert_eq!(
        cats(r#"[{"Key":"stripe.secret","Value":12345}]"#),
        [(Category::SecretField, "12345".to_owned())]
    );
    // A repeated `value`: every copy.
    assert_eq!(
        cats(r#"{"name":"DB_PASSWORD","value":"a1","value":"b2"}"#),
        [
            (Category::SecretField, "a1".to_owned()),
            (Category::SecretField, "b2".to_owned())
        ]
    );
    // Look-alikes: a product named in prose, a pair whose name is no secret,
    // a value in another object than the name.
    for benign in [
        r#"{"name":"Password manager","value":19.99}"#,
        r#"{"name":"page_size","value":"50"}"#,
        r#"{"name":"DB_PASSWORD","settings":{"value":"x"}}"#,
        r#"{"name":"token","value":null}"#,
    ] {
        assert!(cats(benign).is_empty(), "{benign}");
    }
}
