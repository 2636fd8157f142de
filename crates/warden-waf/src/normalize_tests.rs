//! Tests for normalisation: decoding rounds and their bound, SQL views, hidden
//! breaks and NUL, and the shortcut held to the general path (ASCII, Latin letters,
//! literal `%`, `&` and `\`).

use super::*;

#[test]
fn undoes_layers_of_encoding() {
    assert_eq!(Views::new("%2527%20or%201%3D1").decoded, "' or 1=1");
    assert_eq!(Views::new("&#x3c;script&gt;").decoded, "<script>");
    assert_eq!(Views::new("&#60script").decoded, "<script");
    assert_eq!(Views::new("\\u003cimg").decoded, "<img");
    assert_eq!(Views::new("%u003csvg").decoded, "<svg");
    assert_eq!(Views::new("%c0%ae%c0%ae/").decoded, "../");
    assert_eq!(Views::new("＜ＳＣＲＩＰＴ＞").folded, "<script>");
    assert_eq!(Views::new("%uff0e%uff0e%u2215etc").folded, "../etc");
    assert_eq!(Views::new("①②⑦.⓪.⓪.①").folded, "127.0.0.1");
    assert_eq!(
        Views::new("127。0。0。1 𝟏𝟐𝟕 ⓛⓞⓒⓐⓛⓗⓞⓢⓣ").folded,
        "127.0.0.1 127 localhost"
    );
    assert_eq!(Views::new("&#0000000106;ava").decoded, "java");
    assert_eq!(Views::new("%c4%8d%c4%8aSet").folded, "\r\nset");
    // A lone č is Czech, not a carriage return.
    assert_eq!(Views::new("čas").folded, "čas");
}

#[test]
fn the_shortcut_for_plain_ascii_gives_the_views_the_general_path_gives() {
    let corpus = [
        "",
        "a",
        "Ada Byrne",
        "O'Brien",
        "select a plan from the menu",
        "1 UNION SELECT password FROM users",
        "UN/**/ION/**/SEL/**/ECT",
        "/*!50000union*/ select",
        "1'+or+'1'='1",
        "a\t \n b",
        "a  b",
        "a\x0bb",
        "x\x0cy",
        "line\r\nbreak",
        "<SCRIPT>alert(1)</SCRIPT>",
        "../../etc/passwd",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "$(cat /etc/passwd)",
        "admin)(|(uid=*))",
        "{\"$ne\": 1}",
        "Gift wrap please!",
        "http://169.254.169.254/",
        "2026-12-03T09:00:00Z/2026-12-03T13:00:00Z",
        "+353 1 555 0142",
        "~`^[]|@#?",
        "\x01\x1f\x7f",
        "ZZ",
        "AZ az @[`{",
    ];
    for text in corpus {
        let fast = Views::new(text);
        assert!(
            matches!(fast.decoded, Cow::Borrowed(_)),
            "{text:?} took the general path"
        );
        assert_eq!(fast, Views::general(text), "{text:?}");
    }
    // Every ASCII byte but the decoding ones, alone and beside a capital.
    for b in (1u8..0x80).filter(|b| !b"%&\\".contains(b)) {
        for text in [format!("{}", b as char), format!("Q{}x", b as char)] {
            assert_eq!(Views::new(&text), Views::general(&text), "{text:?}");
        }
    }
    // Latin letters that folding only lower-cases take the shortcut too;
    // every character up to U+0800, alone and among ASCII, gives the
    // general path's views either way.
    for text in [
        "Siobhán O'Brien",
        "DÚN LAOGHAIRE",
        "Łódź <b>",
        "ǄŽ /* x */ Ǆ",
        "Rock & Roll 50% off",
        "Gift wrap please & add a card: 'Happy birthday, Mam!'",
        "C:\\Temp & 100%",
        "&;&#;&#x;%zz%u12\\u12\\q",
    ] {
        let fast = Views::new(text);
        assert!(matches!(fast.decoded, Cow::Borrowed(_)), "{text:?}");
        assert_eq!(fast, Views::general(text), "{text:?}");
    }
    // Escapes that decode still take the general path.
    for text in ["%27", "a &amp; b", "&#39;", "\\u0027", "50%25 off", "x%00y"] {
        assert!(matches!(Views::new(text).decoded, Cow::Owned(_)), "{text:?}");
    }
    for c in (0x80..0x800).filter_map(char::from_u32) {
        for text in [c.to_string(), format!("Q{c}x {c}{c}"), format!("a{c}  b+")] {
            let fast = Views::new(&text);
            assert_eq!(matches!(fast.decoded, Cow::Borrowed(_)), quiet_letter(c), "{text:?}");
            assert_eq!(fast, Views::general(&text), "{text:?}");
        }
    }
}

#[test]
fn the_first_escape_is_the_first_position_that_decodes() {
    let alphabet = ["%", "&", "\\", "#", "x", "2", "7", ";", "u", "a", "amp", "0"];
    let mut texts = vec![String::new()];
    for _ in 0..5 {
        let longer: Vec<String> = texts
            .iter()
            .filter(|t| t.len() >= texts.last().map_or(0, |l| l.len()).saturating_sub(3))
            .flat_map(|t| alphabet.iter().map(move |a| format!("{t}{a}")))
            .collect();
        texts.extend(longer);
    }
    let mut found = 0;
    for t in &texts {
        let b = t.as_bytes();
        let mut scratch = Vec::new();
        let want = (0..b.len()).find(|&i| {
            scratch.clear();
            match b[i] {
                b'%' => percent(&b[i..], &mut scratch) > 0,
                b'&' => entity(&b[i..], &mut scratch) > 0,
                b'\\' => escape(&b[i..], &mut scratch) > 0,
                _ => false,
            }
        });
        assert_eq!(first_escape(b), want, "{t:?}");
        found += usize::from(want.is_some());
    }
    assert!(found > 1000 && found < texts.len(), "{found}");
}

#[test]
fn quiet_letters_lower_case_to_one_non_ascii_letter() {
    for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|c| quiet_letter(*c)) {
        let lower: Vec<char> = c.to_lowercase().collect();
        assert_eq!(lower.len(), 1, "{c:?}");
        assert!(!lower[0].is_ascii() && !c.is_whitespace(), "{c:?}");
        assert_eq!(fold(&c.to_string()), lower[0].to_string(), "{c:?}");
    }
}

#[test]
fn plain_text_is_left_as_it_is() {
    let v = Views::new("Rock & Roll 50% off");
    assert_eq!(v.decoded, "Rock & Roll 50% off");
    assert!(!v.hidden_break && !v.hidden_nul);
}

#[test]
fn decoding_is_bounded() {
    // Five layers of `%25`: four rounds undo four of them.
    let v = Views::new("%25252525%32%37");
    assert_ne!(v.decoded, "'");
}

#[test]
fn sql_comments_are_seen_both_ways() {
    let v = Views::new("UN/**/ION/**/SEL/**/ECT");
    assert_eq!(v.sql(), "un ion sel ect");
    assert_eq!(v.sql_joined(), "unionselect");
    assert_eq!(Views::new("/*!50000union*/ select").sql(), " union select");
    assert_eq!(Views::new("1'+or+'1'='1").sql(), "1' or '1'='1");
    assert_eq!(Views::new("a\t \n b").sql(), "a b");
}

#[test]
fn hidden_line_breaks_and_nul_are_flagged() {
    let v = Views::new("a%0d%0aSet-Cookie: x");
    assert!(v.hidden_break);
    assert!(Views::new("x%00.jpg").hidden_nul);
    assert!(!Views::new("line\nbreak").hidden_break);
}
