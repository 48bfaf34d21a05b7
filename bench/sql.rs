//! Prints one of the matcher's SQL statements, exactly as the server sends
//! it (`$n` bind parameters), so that a benchmark can replay it with pgbench.
//!
//! cargo run --release --example matcher-sql -- in_person

use std::io::Write;

use ketnoi::db::models::matcher::statements;
use ketnoi::domain::access::Audience;

fn main() -> std::process::ExitCode {
    let wanted = std::env::args().nth(1).unwrap_or_default();
    for (name, sql) in statements(Audience::Full) {
        if name == wanted {
            return match writeln!(std::io::stdout(), "{sql}") {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(_) => std::process::ExitCode::FAILURE,
            };
        }
    }
    let names: Vec<&str> = statements(Audience::Full).iter().map(|(n, _)| *n).collect();
    eprintln!("usage: matcher-sql {}", names.join("|"));
    std::process::ExitCode::FAILURE
}
