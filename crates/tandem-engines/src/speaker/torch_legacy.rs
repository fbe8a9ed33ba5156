//! A reader for PyTorch's legacy (pre-1.6, non-zip) `torch.save` format, enough for a
//! `state_dict` of `f32` tensors.
//!
//! The file is a sequence of pickles — the magic number, the protocol version (1001), a
//! `sys_info` dict, the saved object, the list of storage keys — followed by the raw storages in
//! the order of that list, each a little-endian `u64` element count and the elements. Tensors in
//! the object are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls
//! whose storage is a persistent id `('storage', torch.FloatStorage, key, location, numel,
//! view)`. Several tensors may share one storage at different offsets.
//!
//! The pickles are run by the `pickle` module. Every error is a message (the caller wraps it in
//! [`crate::EngineError::BadModel`]); nothing panics on a corrupt file.

use std::collections::HashMap;

use super::pickle::{take, unpickle, TensorRef, Value};

/// A dense, row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Sizes of the dimensions.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements.
    pub data: Vec<f32>,
}

/// The magic number of the legacy format (`0x1950a86a20f9469cfc6c`), little-endian.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// Protocol version written after the magic number.
const PROTOCOL_VERSION: i64 = 1001;
/// Largest storage or tensor accepted, elements.
pub(super) const MAX_ELEMENTS: u64 = 1 << 28;

/// Reads the `f32` tensors of a legacy `torch.save` file. The object may be a `state_dict` or a
/// dict holding one under `model_state` (Resemblyzer's checkpoint); names are the dict keys.
pub fn read_state_dict(bytes: &[u8]) -> Result<HashMap<String, Tensor>, String> {
    let mut pos = 0;
    match unpickle(bytes, &mut pos)? {
        Value::BigInt(b) if b == MAGIC => {}
        _ => return Err("not a legacy torch file (bad magic number)".into()),
    }
    match unpickle(bytes, &mut pos)? {
        Value::Int(PROTOCOL_VERSION) => {}
        other => return Err(format!("unsupported torch protocol version {other:?}")),
    }
    let _sys_info = unpickle(bytes, &mut pos)?;
    let object = unpickle(bytes, &mut pos)?;
    let keys = match unpickle(bytes, &mut pos)? {
        Value::List(keys) => keys,
        _ => return Err("the storage key list is not a list".into()),
    };

    let mut element_sizes = HashMap::new();
    collect_storages(&object, &mut element_sizes);
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let size = *element_sizes
            .get(&key)
            .ok_or_else(|| format!("storage {key} is listed but never used"))?;
        let count = u64::from_le_bytes(take(bytes, &mut pos, 8)?.try_into().unwrap_or([0; 8]));
        if count > MAX_ELEMENTS {
            return Err(format!(
                "storage {key} is implausibly large ({count} elements)"
            ));
        }
        let data = take(bytes, &mut pos, count as usize * size)?;
        storages.insert(key, data);
    }

    let state = match &object {
        Value::Dict(items) => items
            .iter()
            .find(|(k, _)| *k == Value::Str("model_state".into()))
            .map(|(_, v)| v)
            .unwrap_or(&object),
        _ => return Err("the saved object is not a dict".into()),
    };
    let Value::Dict(items) = state else {
        return Err("model_state is not a dict".into());
    };
    let mut out = HashMap::new();
    for (name, value) in items {
        if let (Value::Str(name), Value::Tensor(t)) = (name, value) {
            let storage = storages
                .get(&t.key)
                .ok_or_else(|| format!("{name}: storage {} is missing", t.key))?;
            if element_sizes.get(&t.key) != Some(&4) {
                return Err(format!("{name}: only float32 tensors are supported"));
            }
            out.insert(
                name.clone(),
                materialize(t, storage).map_err(|e| format!("{name}: {e}"))?,
            );
        }
    }
    Ok(out)
}

fn collect_storages(v: &Value, out: &mut HashMap<String, usize>) {
    match v {
        Value::Tensor(t) => {
            out.entry(t.key.clone()).or_insert(4);
        }
        Value::Storage { key, element_size } => {
            out.insert(key.clone(), *element_size);
        }
        Value::Tuple(items) | Value::List(items) => {
            items.iter().for_each(|i| collect_storages(i, out));
        }
        Value::Dict(items) => items.iter().for_each(|(k, v)| {
            collect_storages(k, out);
            collect_storages(v, out);
        }),
        _ => {}
    }
}

/// Copies a (possibly strided) view of a storage into a dense tensor.
fn materialize(t: &TensorRef, storage: &[u8]) -> Result<Tensor, String> {
    let numel_storage = storage.len() / 4;
    let count = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c as u64 <= MAX_ELEMENTS)
        .ok_or("implausible shape")?;
    let mut data = Vec::with_capacity(count);
    if count > 0 {
        // The largest index the view touches must be inside the storage.
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (&d, &s)| {
                a.checked_add((d - 1).checked_mul(s)?)
            })
            .ok_or("index overflow")?;
        if last >= numel_storage {
            return Err(format!(
                "view reaches element {last} of a storage of {numel_storage}"
            ));
        }
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..count {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            let b = &storage[at * 4..at * 4 + 4];
            data.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
    Ok(Tensor {
        shape: t.shape.clone(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny legacy file: one 2x2 tensor `w` and a 3-element `b` in one shared storage.
    fn tiny_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend([0x80, 2, 0x8a, 10]);
        f.extend(MAGIC);
        f.push(b'.');
        f.extend([0x80, 2, b'M', 0xe9, 0x03, b'.']);
        f.extend([0x80, 2, b'}', b'.']);
        // object: OrderedDict with w (offset 0, 2x2, stride (1,2): a transposed view) and b
        f.extend([0x80, 2]);
        f.extend(b"ccollections\nOrderedDict\n)R(");
        let storage = |f: &mut Vec<u8>| {
            f.extend(b"(X\x07\0\0\0storage");
            f.extend(b"ctorch\nFloatStorage\n");
            f.extend(b"X\x01\0\0\0kX\x03\0\0\0cpuK\x07NtQq\x00");
        };
        f.extend(b"X\x01\0\0\0w");
        f.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        storage(&mut f);
        f.extend(b"K\x00K\x02K\x02\x86K\x01K\x02\x86\x89)tR");
        f.extend(b"X\x01\0\0\0b");
        f.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(h\x00K\x04K\x03\x85K\x01\x85\x89)tR");
        f.extend(b"u.");
        f.extend([0x80, 2]);
        f.extend(b"]X\x01\0\0\0ka.");
        f.extend(7u64.to_le_bytes());
        for x in 0..7 {
            f.extend((x as f32).to_le_bytes());
        }
        f
    }

    #[test]
    fn reads_views_of_a_shared_storage() {
        let t = read_state_dict(&tiny_file()).unwrap();
        assert_eq!(t["w"].shape, [2, 2]);
        assert_eq!(t["w"].data, [0.0, 2.0, 1.0, 3.0]);
        assert_eq!(t["b"].data, [4.0, 5.0, 6.0]);
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let good = tiny_file();
        for n in 0..good.len() {
            assert!(read_state_dict(&good[..n]).is_err(), "prefix of {n} bytes");
        }
        for garbage in [&b"not a model"[..], &[0xff; 64], &[0x80, 2, b'R', b'.']] {
            assert!(read_state_dict(garbage).is_err());
        }
        // A view past the end of its storage is refused.
        let mut bad = good.clone();
        let at = bad.windows(4).position(|w| w == b"K\x04K\x03").unwrap();
        bad[at + 1] = 5;
        assert!(read_state_dict(&bad).unwrap_err().contains("reaches"));
    }
}
