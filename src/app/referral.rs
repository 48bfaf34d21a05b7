//! `ketnoi referral`: the caseworker's and the receiving organisation's
//! side of a hand-off, on their own machine.

use std::io::Write;

use anyhow::Context;

/// `ketnoi referral`: makes keys, seals and opens hand-offs on this machine
/// (src/exchange/sealed.rs). No database; a plaintext goes to standard
/// output only, never to the logs.
pub fn run(command: &crate::config::ReferralCommand) -> anyhow::Result<()> {
    use crate::config::ReferralCommand;
    use crate::exchange::sealed;
    use std::io::Read;

    let mut out = std::io::stdout().lock();
    match command {
        ReferralCommand::Keygen { secret_key_file } => {
            use std::os::unix::fs::OpenOptionsExt;
            let (secret, public) = sealed::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(secret_key_file)
                .with_context(|| {
                    format!("creating {} (never overwritten)", secret_key_file.display())
                })?;
            writeln!(file, "{secret}")?;
            file.sync_all()?;
            writeln!(out, "{public}")?;
        }
        ReferralCommand::Seal { public_key } => {
            let mut plaintext = Vec::new();
            std::io::stdin().read_to_end(&mut plaintext)?;
            writeln!(out, "{}", sealed::seal(public_key, &plaintext)?)?;
        }
        ReferralCommand::Open { secret_key_file } => {
            let secret = std::fs::read_to_string(secret_key_file)
                .with_context(|| format!("reading {}", secret_key_file.display()))?;
            let mut sealed_box = String::new();
            std::io::stdin().read_to_string(&mut sealed_box)?;
            out.write_all(&sealed::open(secret.trim(), sealed_box.trim())?)?;
        }
    }
    out.flush()?;
    Ok(())
}
