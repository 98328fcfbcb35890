//! `gleaner-validator`: the validator service and its admin commands.

fn main() -> anyhow::Result<()> {
    Ok(())
}
