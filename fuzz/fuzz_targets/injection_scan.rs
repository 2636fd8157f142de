//! Fuzzes the injection detector: any input, every field kind, every level.
//! Invariants: no panic, and a scan is deterministic (the same value and field
//! give the same finding twice).

#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_waf::{Categories, Field, Level, Scanner, Views};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let value = String::from_utf8_lossy(rest);
    let level = match flags & 3 {
        0 => Level::Low,
        1 => Level::Medium,
        _ => Level::High,
    };
    let field = Field {
        is_key: flags & 4 != 0,
        url_like: flags & 8 != 0,
        in_header: flags & 16 != 0,
    };
    let scanner = Scanner::new(level, Categories::ALL);
    let first = scanner.scan(&value, field);
    assert_eq!(first, scanner.scan(&value, field));
    let views = Views::new(&value);
    // Decoding never grows a value: every escape is at least as long as what
    // it stands for (an undecodable byte, `%ff`, becomes U+FFFD: 3 for 3).
    assert!(views.decoded.len() <= value.len());
});
