//! Unit tests for path normalisation.

// Tests may unwrap (STYLE.md §6); the workspace lint denies it everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

// ---------------------------------------------------------------- normalisation

fn norm(raw: &str) -> Result<String, PathError> {
    normalize_path(raw)
}

#[track_caller]
fn assert_norm(raw: &str, expected: &str) {
    assert_eq!(norm(raw).as_deref(), Ok(expected), "normalising {raw:?}");
}

#[track_caller]
fn assert_refused(raw: &str, expected: PathError) {
    assert_eq!(norm(raw), Err(expected), "normalising {raw:?}");
}

#[test]
fn plain_paths_are_returned_unchanged() {
    for path in [
        "/",
        "/a",
        "/a/b",
        "/a/b/",
        "/users/42/orders",
        "/a.b/c..d/...",
        "/~x/-_",
    ] {
        assert_norm(path, path);
    }
}

#[test]
fn path_must_be_absolute() {
    for raw in ["", "*", "a/b", "http://example.com/a", "%2Fa", ".."] {
        assert_refused(raw, PathError::NotAbsolute);
    }
}

#[test]
fn duplicate_slashes_merge() {
    assert_norm("//a///b", "/a/b");
    assert_norm("//admin", "/admin");
    assert_norm("//", "/");
    assert_norm("/a//", "/a/");
}

#[test]
fn dot_segments_are_removed() {
    assert_norm("/a/./b", "/a/b");
    assert_norm("/a/b/../c", "/a/c");
    assert_norm("/../a", "/a");
    assert_norm("/../../a/../../b", "/b");
    assert_norm("/a/..", "/");
    assert_norm("/a/b/..", "/a/");
    assert_norm("/a/b/.", "/a/b/");
    assert_norm("/.", "/");
    assert_norm("/..", "/");
    assert_norm("/a/./", "/a/");
    assert_norm("/a/b/../", "/a/");
    assert_norm("/./a/.//b/", "/a/b/");
}

#[test]
fn segments_that_only_look_like_dots_stay() {
    assert_norm("/a/.../b", "/a/.../b");
    assert_norm("/a/.b/c.", "/a/.b/c.");
    assert_norm("/a/..b", "/a/..b");
}

#[test]
fn traversal_attacks_normalise_to_the_target() {
    for raw in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/%2e./admin",
        "//admin",
        "/./admin",
        "/public/./../admin/.",
    ] {
        let expected = if raw.ends_with('.') { "/admin/" } else { "/admin" };
        assert_norm(raw, expected);
    }
}

#[test]
fn encoded_slash_is_refused() {
    assert_refused("/admin%2F..", PathError::EncodedSlash);
    assert_refused("/a%2fb", PathError::EncodedSlash);
    assert_refused("/%2F", PathError::EncodedSlash);
}

#[test]
fn backslash_is_refused() {
    assert_refused("/a\\b", PathError::Backslash);
    assert_refused("/a%5Cb", PathError::Backslash);
    assert_refused("/..%5c..%5cwindows", PathError::Backslash);
}

#[test]
fn nul_is_refused() {
    assert_refused("/a%00b", PathError::Nul);
    assert_refused("/a\0b", PathError::Nul);
}

#[test]
fn control_characters_are_refused() {
    for raw in [
        "/a%0Ab",
        "/a%0d%0aSet-Cookie:x",
        "/a%1F",
        "/a%7F",
        "/a\nb",
        "/a\tb",
        "/a\x7fb",
    ] {
        assert_refused(raw, PathError::ControlChar);
    }
}

#[test]
fn bad_percent_encoding_is_refused() {
    for raw in ["/a%", "/a%2", "/a%zz", "/a%2g", "/%%41", "/a%-1"] {
        assert_refused(raw, PathError::BadPercentEncoding);
    }
}

#[test]
fn decoded_bytes_must_be_utf8() {
    assert_refused("/%C3%28", PathError::InvalidUtf8);
    assert_refused("/%FF", PathError::InvalidUtf8);
    assert_refused("/%C3", PathError::InvalidUtf8);
    assert_refused("/%C3/%A9", PathError::InvalidUtf8);
}

#[test]
fn valid_unicode_is_kept_encoded() {
    assert_norm("/caf%C3%A9", "/caf%C3%A9");
    assert_norm("/caf%c3%a9", "/caf%C3%A9");
    assert_norm("/café", "/caf%C3%A9");
    assert_norm("/%F0%9F%A6%80/x", "/%F0%9F%A6%80/x");
}

#[test]
fn unreserved_escapes_are_decoded_and_others_uppercased() {
    assert_norm("/%41%7a%30%2D%2e%5F%7E", "/Az0-._~");
    assert_norm("/a%3ab", "/a%3Ab");
    assert_norm("/a%3Ab", "/a%3Ab");
    assert_norm("/a%20b", "/a%20b");
    assert_norm("/%25", "/%25");
}

#[test]
fn no_double_decoding() {
    assert_norm("/%252e%252e/admin", "/%252e%252e/admin");
    assert_norm("/%252F", "/%252F");
}

#[test]
fn first_error_from_the_left_wins() {
    assert_refused("/%2F%00", PathError::EncodedSlash);
    assert_refused("/%00%2F", PathError::Nul);
    assert_refused("/%zz%2F", PathError::BadPercentEncoding);
}

#[test]
fn normal_form_is_a_fixed_point() {
    for raw in [
        "/public/%2e%2e/admin",
        "//a///b/",
        "/caf%c3%a9",
        "/a/%3a/./b/..",
        "/%7euser",
    ] {
        let once = norm(raw).unwrap();
        assert_eq!(norm(&once).as_deref(), Ok(once.as_str()), "{raw:?}");
    }
}

/// Deterministic pseudo-random paths built from tricky pieces: every accepted one
/// must come out canonical (no `//`, no dot segment) and be a fixed point.
#[test]
fn generated_paths_normalise_to_canonical_fixed_points() {
    const PIECES: [&str; 12] = ["/", "a", ".", "..", "%2e", "%2E", "%41", "%3a", "é", "%C3%A9", "~", "%"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut raw = String::from("/");
        for _ in 0..(state % 9) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            raw.push_str(PIECES[usize::try_from(state >> 60).unwrap() % PIECES.len()]);
        }
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let Ok(out) = norm(&raw) else { continue };
        assert!(out.starts_with('/'), "{raw:?} -> {out:?}");
        assert!(!out.contains("//"), "{raw:?} -> {out:?}");
        assert!(out.is_ascii(), "{raw:?} -> {out:?}");
        for segment in out.split('/') {
            assert!(segment != "." && segment != "..", "{raw:?} -> {out:?}");
        }
        assert_eq!(norm(&out).as_deref(), Ok(out.as_str()), "{raw:?}");
    }
}

#[test]
fn dot_segments_with_parameters_are_refused_and_other_semicolons_kept() {
    for attack in [
        "/public/..;/admin",
        "/public/.;/admin",
        "/a/..;jsessionid=1/b",
        "/public/%2e%2e;/admin",
    ] {
        assert_refused(attack, PathError::DotSegmentParameter);
    }
    assert_norm("/a;v=1/b", "/a;v=1/b");
}

#[test]
fn path_errors_have_clear_messages() {
    assert_eq!(
        PathError::EncodedSlash.to_string(),
        "path contains an encoded slash (`%2F`)"
    );
    assert_eq!(PathError::NotAbsolute.to_string(), "path must start with `/`");
}
