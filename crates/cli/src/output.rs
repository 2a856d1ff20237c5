//! `--output json|table`: machine-readable JSON or aligned text tables.

use serde::Serialize;

/// `outln!` that survives a closed pipe: `genesis tenants list | head -1` must end
/// quietly, not with Rust's "failed printing to stdout" panic.
macro_rules! outln {
    () => { $crate::output::write_stdout(b"\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::output::write_stdout(line.as_bytes());
    }};
}

/// Writes to standard output. When the reader has gone (a closed pipe), the process exits
/// at once with status 0, as Unix filters do; any other failure to write exits 1.
pub fn write_stdout(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON document for scripts.
    Json,
}

/// Prints rows as a table (`headers` + `cells`) or `value` as JSON.
pub fn print<T: Serialize>(out: Output, value: &T, headers: &[&str], cells: Vec<Vec<String>>) {
    match out {
        Output::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("error: cannot encode output: {e}"),
        },
        Output::Table => print_table(headers, &cells),
    }
}

/// Prints a JSON object: as itself, or as FIELD/VALUE rows of its scalar fields (nested
/// objects and lists are left to `-o json`).
pub fn print_object(out: Output, value: &serde_json::Value) {
    let rows = value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some(vec![k.clone(), text])
        })
        .collect();
    print(out, value, &["FIELD", "VALUE"], rows);
}

/// Aligned columns.
pub fn print_table(headers: &[&str], cells: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in cells {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |row: Vec<&str>| {
        row.iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    outln!("{}", line(headers.to_vec()));
    for row in cells {
        outln!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
