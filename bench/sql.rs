//! Prints one of the SQL statements a benchmark replays, exactly as the
//! server sends it (`$n` bind parameters), so that pgbench can run it
//! without the API: the matcher's (`match`, `near`) and the coverage
//! review's (`coverage` to exact points, `coverage_public` to the public
//! ones).
//!
//! cargo run --release --example matcher-sql -- match

use std::io::Write;

use ketnoi::db::models::{coverage, matcher};
use ketnoi::domain::access::Audience;

fn main() -> std::process::ExitCode {
    let wanted = std::env::args().nth(1).unwrap_or_default();
    let mut all: Vec<(&str, String)> = matcher::statements(Audience::Full);
    all.push((
        "coverage",
        coverage::statement_for(Audience::Full).to_owned(),
    ));
    all.push((
        "coverage_public",
        coverage::statement_for(Audience::Public).to_owned(),
    ));
    for (name, sql) in &all {
        if *name == wanted {
            return match writeln!(std::io::stdout(), "{sql}") {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(_) => std::process::ExitCode::FAILURE,
            };
        }
    }
    let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    eprintln!("usage: matcher-sql {}", names.join("|"));
    std::process::ExitCode::FAILURE
}
