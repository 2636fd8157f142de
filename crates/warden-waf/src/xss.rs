//! Cross-site scripting: script-capable tags, event-handler attributes,
//! script URLs and attribute break-outs, plus libinjection's HTML5 tokenizer.
//! Plain formatting (`<b>`, `a < b`, `<3`) is not an attack.

use std::sync::LazyLock;

use crate::normalize::Views;
use crate::rules::{Rule, RuleSet, found};
use crate::{Category, Finding, LIBINJECTION_MAX, Level};

/// Event handler names browsers run (prefixes; `on` is added by the pattern).
const EVENTS: &str = "abort|afterprint|animation\\w*|auxclick|before\\w+|begin|blur|cancel|canplay\\w*|change|click|close|contextmenu|copy|cuechange|cut|dblclick|drag\\w*|drop|durationchange|emptied|end|ended|error|finish|focus\\w*|formdata|hashchange|input|invalid|key\\w+|load\\w*|message|mouse\\w+|offline|online|page\\w+|paste|pause|play\\w*|pointer\\w+|popstate|progress|ratechange|repeat|reset|resize|scroll\\w*|search|seek\\w+|select\\w*|show|stalled|start|storage|submit|suspend|timeupdate|toggle|touch\\w+|transition\\w+|unload|volumechange|waiting|wheel";

pub(crate) static SET: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Xss, &RULES));

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let handler_in_tag: &'static str =
        Box::leak(format!(r#"<[a-z!/?][^>]*?[\s/"'`](on({EVENTS}))\s*="#).into_boxed_str());
    let handler_breakout: &'static str =
        Box::leak(format!(r#"['"`]\s*(/\s*)?([a-z-]+(\s*=\s*\S+)?\s+)*on({EVENTS})\s*="#).into_boxed_str());
    vec![
        ("script_tag", Level::Low, r"<\s*/?\s*script\b"),
        ("event_handler", Level::Low, handler_in_tag),
        ("attribute_breakout", Level::Low, handler_breakout),
        (
            "script_url",
            Level::Low,
            r"(j\s*a\s*v\s*a|v\s*b|l\s*i\s*v\s*e)\s*s\s*c\s*r\s*i\s*p\s*t\s*:\s*([^\s]|[\w.$]+\s*[(`=])",
        ),
        (
            "data_url",
            Level::Low,
            r"data\s*:\s*(text/html|text/javascript|application/(x-)?javascript|image/svg\+xml|text/xml)",
        ),
        (
            "active_tag",
            Level::Low,
            r"<\s*(iframe|frame|frameset|object|embed|applet|svg|math|base|meta|link|style|isindex|marquee|template|portal|xss|animate|set|handler)\b",
        ),
        (
            "active_attribute",
            Level::Low,
            r"\b(srcdoc|formaction|xlink:href|background)\s*=|\bhref\s*=\s*['\x22]?\s*(javascript|data|vbscript):",
        ),
        (
            "css_expression",
            Level::Medium,
            r"expression\s*\(|url\s*\(\s*['\x22]?\s*javascript|@import\b|-moz-binding",
        ),
        (
            "script_sink",
            Level::Medium,
            r"\b(document\.(cookie|domain|write)|window\.location|\.innerhtml\s*=|eval\s*\(|alert\s*\(|prompt\s*\(|confirm\s*\(|fromcharcode\s*\()",
        ),
        ("html_tag_attribute", Level::High, r"<[a-z][a-z0-9]*\s+[^>]*[a-z-]+\s*="),
    ]
});

/// Checks a normalised value.
pub(crate) fn check(v: &Views<'_>, level: Level) -> Option<Finding> {
    // Every rule needs one of these characters (a tag, a URL scheme, an
    // attribute, a call, an import).
    let shaped = v.has_any(b"<:=(@`") || (v.has_any(b"-") && v.folded.contains("-moz-binding"));
    if !shaped {
        return None;
    }
    if let Some(f) = SET.first_folded(v, level) {
        return Some(f);
    }
    // libinjection tokenises the value as HTML in five contexts: it is asked
    // only where markup could start (a tag, or a quote closing an attribute).
    if level == Level::Low || !may_open_markup(v) || !MARKUP.as_ref().is_some_and(|re| re.is_match(v.folded.as_bytes()))
    {
        return None;
    }
    let bytes = &v.decoded.as_bytes()[..v.decoded.len().min(LIBINJECTION_MAX)];
    libinjectionrs::detect_xss(bytes).is_injection().then_some(())?;
    found(Category::Xss, "libinjection_xss")
}

/// Compiles every rule set now, so the first request does not pay for it.
pub(crate) fn warm() {
    LazyLock::force(&SET);
    LazyLock::force(&MARKUP);
}

/// What [`MARKUP`] needs to match: a `<`, or a quote and a `=` (checked on
/// the byte set, before the pass).
fn may_open_markup(v: &Views<'_>) -> bool {
    v.has_any(b"<") || (v.has_any(b"=") && v.has_any(b"'\"`"))
}

static MARKUP: LazyLock<Option<crate::rules::Regex>> =
    LazyLock::new(|| crate::rules::regex(r#"<[a-z!/?]|['"`]\s*(/\s*)?[a-z-]+\s*="#));

#[cfg(test)]
pub(crate) fn compiled() -> bool {
    SET.compiled() && MARKUP.is_some()
}

#[cfg(test)]
mod tests {
    use crate::normalize::Views;

    /// The byte-set gate never hides a value the markup pattern matches:
    /// every string of up to four characters over an alphabet of the
    /// pattern's bytes and their neighbours, and some longer ones.
    #[test]
    fn the_markup_gate_passes_everything_the_markup_pattern_matches() {
        let alphabet = ["<", "=", "'", "\"", "`", "/", " ", "a", "-", "!", "?", "＜", "1"];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |a| format!("{t}{a}")))
                .collect();
            texts.extend(longer);
        }
        texts.extend(["x <b>", "a' onload=", "Thanks <3", "\" / style =", "x = 'y'"].map(String::from));
        let re = super::MARKUP.as_ref().expect("MARKUP compiles");
        let mut matched = 0;
        for t in &texts {
            let v = Views::new(t);
            if re.is_match(v.folded.as_bytes()) {
                matched += 1;
                assert!(super::may_open_markup(&v), "{t:?}");
            }
        }
        // The alphabet reaches the pattern often, and the gate closes often.
        assert!(matched > 1000, "{matched}");
        assert!(texts.iter().filter(|t| !super::may_open_markup(&Views::new(t))).count() > 1000);
    }
}
