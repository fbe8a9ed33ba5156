//! Reader of CTranslate2's `model.bin` (binary version 6), little-endian:
//! `u32 version, string spec, u32 spec_revision, u32 n_vars`, then per variable
//! `string name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, data`, then
//! `u32 n_aliases` and `(alias, target)` string pairs. A string is a `u16` length followed by
//! that many bytes, the last one NUL. Every read is bounds-checked: malformed input is an error,
//! never a panic.

use std::collections::BTreeMap;

/// Element type of a CT2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One variable (tensor or scalar), borrowing its data from the file.
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    /// Shape, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian data.
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the variable has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of an integer scalar (or the first element).
    pub fn as_int(&self) -> Option<i64> {
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => *d.first()? as i8 as i64,
            DType::I16 => i16::from_le_bytes(d.get(..2)?.try_into().ok()?) as i64,
            DType::I32 => i32::from_le_bytes(d.get(..4)?.try_into().ok()?) as i64,
            _ => return None,
        })
    }

    /// The elements as f32 (floats only).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self.dtype {
            DType::F32 => Some(
                self.data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DType::F16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            ),
            DType::BF16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// A parsed `model.bin`.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// The spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// The spec revision.
    pub spec_revision: u32,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable<'a>>,
    /// Aliases: alias name to target name (e.g. the tied output projection).
    pub aliases: BTreeMap<String, String>,
}

impl<'a> Model<'a> {
    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| format!("truncated file while reading {what} at byte {}", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

/// Parses a CT2 `model.bin` (binary version 6). Errors say what is wrong with the file.
pub fn parse(data: &[u8]) -> Result<Model<'_>, String> {
    let mut r = Reader { data, pos: 0 };
    let version = r.u32("the binary version")?;
    if version != 6 {
        return Err(format!(
            "unsupported CTranslate2 binary version {version} (expected 6)"
        ));
    }
    let spec = r.string("the spec name")?;
    let spec_revision = r.u32("the spec revision")?;
    let n_vars = r.u32("the variable count")? as usize;
    let mut variables = BTreeMap::new();
    for _ in 0..n_vars {
        let name = r.string("a variable name")?;
        let rank = r.u8("a rank")? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32("a dimension")? as usize);
        }
        let code = r.u8("a dtype")?;
        let dtype =
            DType::from_code(code).ok_or_else(|| format!("{name}: unknown dtype code {code}"))?;
        let nbytes = r.u32("a byte count")? as usize;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| format!("{name}: shape {shape:?} overflows"))?;
        if nbytes != expected {
            return Err(format!(
                "{name}: {nbytes} bytes do not match shape {shape:?} of {dtype:?}"
            ));
        }
        let data = r.take(nbytes, &name)?;
        if variables
            .insert(name.clone(), Variable { shape, dtype, data })
            .is_some()
        {
            return Err(format!("variable {name} appears twice"));
        }
    }
    let mut aliases = BTreeMap::new();
    let n_aliases = r.u32("the alias count")?;
    for _ in 0..n_aliases {
        let alias = r.string("an alias")?;
        let target = r.string("an alias target")?;
        aliases.insert(alias, target);
    }
    if r.pos != data.len() {
        return Err(format!(
            "{} trailing bytes after the aliases",
            data.len() - r.pos
        ));
    }
    Ok(Model {
        spec,
        spec_revision,
        variables,
        aliases,
    })
}

/// IEEE half to f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut m = man;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE half, rounding to nearest even.
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let man = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1u32 << shift) - 1);
        let mut r = m >> shift;
        if rest > half || (rest == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && r & 1 == 1) {
        r += 1; // may carry into the exponent, which is correct (up to infinity)
    }
    sign | r as u16
}

#[cfg(test)]
pub(crate) mod tests;
