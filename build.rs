//! Lists the sample directory's files for `include_str!`, so that adding a
//! file to seed-data/directory/ needs no code change; and rebuilds when the
//! widget's files change, since release builds carry them (`api::widget`):
//! including MapLibre's, which `npm ci --prefix widget` may install after a
//! first build.

use std::{env, fs, path::Path};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR")?).to_path_buf();
    // The folder, which always exists (a missing path would make Cargo
    // rerun this on every build): its own files and node_modules/.
    println!("cargo::rerun-if-changed={}", root.join("widget").display());
    let dir = root.join("seed-data/directory");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut code = String::from("&[\n");
    for path in files {
        println!("cargo::rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("bad file name")?;
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    fs::write(Path::new(&env::var("OUT_DIR")?).join("seed_files.rs"), code)?;
    Ok(())
}
