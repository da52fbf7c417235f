//! Human tables for CLI listings.

use comfy_table::presets::NOTHING;
use comfy_table::Table;

/// A borderless, left-aligned table with a header row.
pub fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in rows {
        t.add_row(r);
    }
    let text = t.to_string();
    text.lines()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}
