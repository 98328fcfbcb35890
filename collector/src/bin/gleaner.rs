//! `gleaner`: the headless node and lab CLI.

fn main() -> anyhow::Result<()> {
    Ok(())
}
