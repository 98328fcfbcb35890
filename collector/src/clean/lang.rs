//! Language identification with `whatlang`, mapped to ISO 639-1.

use super::dom::Facts;
use crate::util::cut;

/// Only this many bytes of text go to the detector: a few kilobytes identify a language as
/// well as the whole page, and detection time grows with input.
const MAX_DETECT_BYTES: usize = 4096;

/// Below this many bytes of text the detector is a guess; fall back to `<html lang>`.
const MIN_DETECT_BYTES: usize = 40;

/// `(code, confidence)`; `("und", 0.0)` when unknown.
pub(crate) fn detect(text: &str, title: &str, facts: &Facts<'_>) -> (String, f64) {
    let sample = if text.len() >= MIN_DETECT_BYTES {
        text
    } else {
        title
    };
    let sample = cut(sample, MAX_DETECT_BYTES);
    let declared = facts.html_lang.and_then(declared_code);
    if sample.len() >= MIN_DETECT_BYTES
        && let Some(info) = whatlang::detect(sample)
        && let Some(code) = iso639_1(info.lang().code())
    {
        return (code.to_string(), info.confidence().clamp(0.0, 1.0));
    }
    match declared {
        Some(d) => (d, 0.5),
        None => ("und".to_string(), 0.0),
    }
}

/// Primary subtag of a declared `lang`, if it looks like an ISO 639-1 code.
fn declared_code(lang: &str) -> Option<String> {
    let primary = lang.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_lowercase())).then_some(primary)
}

/// Map whatlang's ISO 639-3 codes to ISO 639-1 (None where there is no two-letter code).
fn iso639_1(code3: &str) -> Option<&'static str> {
    Some(match code3 {
        "epo" => "eo",
        "eng" => "en",
        "rus" => "ru",
        "cmn" => "zh",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ben" => "bn",
        "fra" => "fr",
        "deu" => "de",
        "ukr" => "uk",
        "kat" => "ka",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "heb" => "he",
        "yid" => "yi",
        "pol" => "pl",
        "amh" => "am",
        "jav" => "jv",
        "kor" => "ko",
        "nob" => "nb",
        "dan" => "da",
        "swe" => "sv",
        "fin" => "fi",
        "tur" => "tr",
        "nld" => "nl",
        "hun" => "hu",
        "ces" => "cs",
        "ell" => "el",
        "bul" => "bg",
        "bel" => "be",
        "mar" => "mr",
        "kan" => "kn",
        "ron" => "ro",
        "slv" => "sl",
        "hrv" => "hr",
        "srp" => "sr",
        "mkd" => "mk",
        "lit" => "lt",
        "lav" => "lv",
        "est" => "et",
        "tam" => "ta",
        "vie" => "vi",
        "urd" => "ur",
        "tha" => "th",
        "guj" => "gu",
        "uzb" => "uz",
        "pan" => "pa",
        "aze" => "az",
        "ind" => "id",
        "tel" => "te",
        "pes" => "fa",
        "mal" => "ml",
        "ori" => "or",
        "mya" => "my",
        "nep" => "ne",
        "sin" => "si",
        "khm" => "km",
        "tuk" => "tk",
        "aka" => "ak",
        "zul" => "zu",
        "sna" => "sn",
        "afr" => "af",
        "lat" => "la",
        "slk" => "sk",
        "cat" => "ca",
        "tgl" => "tl",
        "hye" => "hy",
        "cym" => "cy",
        _ => return None,
    })
}
