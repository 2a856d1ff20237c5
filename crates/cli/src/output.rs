//! `--output json|table`: machine-readable JSON or aligned text tables.

use serde::Serialize;

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
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode output: {e}"),
        },
        Output::Table => print_table(headers, &cells),
    }
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
    println!("{}", line(headers.to_vec()));
    for row in cells {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
