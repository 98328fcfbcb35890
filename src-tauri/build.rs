//! Build script: makes sure the UI folder exists, then lets tauri-build do its work.
//!
//! `tauri::generate_context!` embeds `../ui/dist` and refuses to compile when it is missing. A fresh
//! clone has no `ui/dist` (it is built by `npm --prefix ui run build` and git-ignored), yet
//! `cargo build/test/clippy --workspace` must work there, so a placeholder page is written that says
//! how to build the real UI. The release scripts always build the real UI first.

use std::path::Path;

const PLACEHOLDER: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Gleaner</title></head>\
<body><h1>Gleaner</h1><p>The dashboard was not built into this binary. Run <code>npm --prefix ui ci &amp;&amp; \
npm --prefix ui run build</code>, then rebuild the app (or use <code>make app</code>).</p></body></html>\n";

fn main() {
    let dist = Path::new("../ui/dist");
    let index = dist.join("index.html");
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    if !index.exists()
        && let Err(err) =
            std::fs::create_dir_all(dist).and_then(|()| std::fs::write(&index, PLACEHOLDER))
    {
        println!(
            "cargo:warning=could not write a placeholder {}: {err}",
            index.display()
        );
    }
    tauri_build::build();
}
