//! The line format of a [`MetadataExport`] (described in the [parent module](super#format)):
//! writing, and strict parsing.

use std::collections::BTreeSet;
use std::io::Write;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Cell, ExportTable, MetadataExport, EXPORT_FORMAT_VERSION};
use crate::{Result, StoreError};

/// The `format` of the header line.
const FORMAT_NAME: &str = "tandem-metadata-export";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    schema_version: u32,
    tables: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableLine {
    table: String,
    columns: Vec<String>,
    rows: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    end: End,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    tables: usize,
    rows: usize,
    sha256: String,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_unit(),
            Cell::Integer(i) => s.serialize_i64(*i),
            Cell::Text(t) => s.serialize_str(t),
            Cell::Real(f) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("real", &format!("{f:?}"))?;
                m.end()
            }
            Cell::Blob(b) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("blob", &BASE64.encode(b))?;
                m.end()
            }
        }
    }
}

fn invalid(line: usize, what: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidExport(format!("line {line}: {what}"))
}

fn cell_from_json(v: Value, line: usize) -> Result<Cell> {
    Ok(match v {
        Value::Null => Cell::Null,
        Value::String(s) => Cell::Text(s),
        Value::Number(n) => Cell::Integer(
            n.as_i64()
                .ok_or_else(|| invalid(line, format!("{n} is not a 64-bit integer")))?,
        ),
        Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
            Some((k, Value::String(s))) if k == "real" => Cell::Real(
                s.parse()
                    .map_err(|e| invalid(line, format!("real {s:?}: {e}")))?,
            ),
            Some((k, Value::String(s))) if k == "blob" => Cell::Blob(
                BASE64
                    .decode(&s)
                    .map_err(|e| invalid(line, format!("blob: {e}")))?,
            ),
            _ => {
                return Err(invalid(
                    line,
                    "a cell object is {\"real\":…} or {\"blob\":…}",
                ))
            }
        },
        other => return Err(invalid(line, format!("not a cell: {other}"))),
    })
}

impl MetadataExport {
    /// Writes the export in the [line format](super#format) to `w`, one line at a time.
    pub fn write_to(&self, w: impl Write) -> std::io::Result<()> {
        let mut w = HashingWriter {
            inner: w,
            hash: Sha256::new(),
        };
        let header = Header {
            format: FORMAT_NAME.into(),
            version: EXPORT_FORMAT_VERSION,
            schema_version: self.schema_version,
            tables: self.tables.len(),
        };
        line(&mut w, &header)?;
        let mut rows = 0;
        for t in &self.tables {
            let head = TableLine {
                table: t.name.clone(),
                columns: t.columns.clone(),
                rows: t.rows.len(),
            };
            line(&mut w, &head)?;
            for row in &t.rows {
                line(&mut w, row)?;
            }
            rows += t.rows.len();
        }
        let trailer = Trailer {
            end: End {
                tables: self.tables.len(),
                rows,
                sha256: format!("{:x}", w.hash.finalize_reset()),
            },
        };
        line(&mut w.inner, &trailer)
    }

    /// The export in the [line format](super#format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Parses the [line format](super#format), strictly: anything but a complete, intact
    /// export is [`StoreError::InvalidExport`]; a newer layout is [`StoreError::FormatTooNew`].
    pub fn from_bytes(bytes: &[u8]) -> Result<MetadataExport> {
        let mut lines = Lines { rest: bytes, no: 0 };
        let header: Header = lines.json()?;
        if header.format != FORMAT_NAME {
            return Err(invalid(1, format!("not a {FORMAT_NAME}")));
        }
        if header.version > EXPORT_FORMAT_VERSION {
            return Err(StoreError::FormatTooNew {
                found: header.version,
                supported: EXPORT_FORMAT_VERSION,
            });
        }
        if header.version != EXPORT_FORMAT_VERSION {
            return Err(invalid(1, format!("unknown version {}", header.version)));
        }
        let mut export = MetadataExport {
            schema_version: header.schema_version,
            tables: Vec::new(),
        };
        let mut names = BTreeSet::new();
        let mut total = 0;
        for _ in 0..header.tables {
            let t: TableLine = lines.json()?;
            let no = lines.no;
            if !names.insert(t.table.clone()) {
                return Err(invalid(no, format!("table {} appears twice", t.table)));
            }
            let distinct: BTreeSet<_> = t.columns.iter().collect();
            if t.columns.is_empty() || distinct.len() != t.columns.len() {
                return Err(invalid(no, "columns must be non-empty and distinct"));
            }
            let mut rows = Vec::with_capacity(t.rows.min(1 << 16));
            for _ in 0..t.rows {
                let values: Vec<Value> = lines.json()?;
                if values.len() != t.columns.len() {
                    let n = t.columns.len();
                    return Err(invalid(
                        lines.no,
                        format!("row of {} cells, not {n}", values.len()),
                    ));
                }
                let no = lines.no;
                rows.push(
                    values
                        .into_iter()
                        .map(|v| cell_from_json(v, no))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            total += rows.len();
            export.tables.push(ExportTable {
                name: t.table,
                columns: t.columns,
                rows,
            });
        }
        let hashed = &bytes[..bytes.len() - lines.rest.len()];
        let trailer: Trailer = lines.json()?;
        let end = trailer.end;
        if end.tables != header.tables || end.rows != total {
            return Err(invalid(
                lines.no,
                "counts do not match the tables and rows read",
            ));
        }
        if end.sha256 != format!("{:x}", Sha256::digest(hashed)) {
            return Err(invalid(
                lines.no,
                "checksum mismatch: the export is corrupt",
            ));
        }
        if !lines.rest.is_empty() {
            return Err(invalid(lines.no + 1, "data after the trailer"));
        }
        Ok(export)
    }
}

fn line(w: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")
}

/// Hashes what passes through it, for the trailer's checksum.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The `\n`-terminated lines of an export, numbered from 1.
struct Lines<'a> {
    rest: &'a [u8],
    no: usize,
}

impl Lines<'_> {
    /// The next line, parsed as `T`; a missing or unterminated line is truncation.
    fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        self.no += 1;
        let end =
            self.rest.iter().position(|&b| b == b'\n').ok_or_else(|| {
                invalid(self.no, "missing or unterminated: the export is truncated")
            })?;
        let (text, rest) = (&self.rest[..end], &self.rest[end + 1..]);
        self.rest = rest;
        serde_json::from_slice(text).map_err(|e| invalid(self.no, e))
    }
}
