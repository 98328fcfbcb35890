//! `gleaner clean FILE…`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::common::{Global, print_json};

/// Largest input read (decompressed): the cleaner ignores input past 8 MiB anyway.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// HTML files, plain or gzip (`.gz`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Base URL for resolving relative links.
    #[arg(long)]
    pub base_url: Option<String>,
}

pub fn main(_g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let dummy = url::Url::parse("http://localhost/")?;
    for file in &a.files {
        let bytes = match read(file) {
            Ok(b) => b,
            Err(e) => {
                failed = true;
                print_json(&serde_json::json!({
                    "file": file.display().to_string(),
                    "error": "read_error",
                    "message": e.to_string(),
                }))?;
                continue;
            }
        };
        let (html, _) = gleaner_collector::fetch::decode_text(&bytes, "", &dummy);
        let t0 = Instant::now();
        let c = gleaner_collector::clean::clean(&html, a.base_url.as_deref());
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        print_json(&serde_json::json!({
            "file": file.display().to_string(),
            "title": c.title,
            "text": c.text,
            "lang": c.lang,
            "lang_score": c.lang_score,
            "page_type": c.page_type,
            "outlinks": c.outlinks.len(),
            "noindex": c.robots.noindex,
            "ms": (ms * 1000.0).round() / 1000.0,
        }))?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn read(path: &PathBuf) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(f)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut out)?;
    } else {
        f.take(MAX_FILE_BYTES).read_to_end(&mut out)?;
    }
    Ok(out)
}
