//! A minimal pickle machine for PyTorch's legacy checkpoints: only the opcodes such files use
//! (protocol 2: memo, marks, tuples, dicts, lists, `GLOBAL`, `REDUCE`, `BUILD`, persistent ids).
//! It calls no Python: the globals it meets are recognised by name (`collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, storage types) or become inert values. Errors are
//! messages; nothing panics on a corrupt input.

use std::collections::HashMap;

/// Limits that keep a hostile file from making us allocate without bound.
const MAX_STACK: usize = 1 << 16;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Storage {
        key: String,
        element_size: usize,
    },
    Tensor(TensorRef),
    /// Anything else (objects we do not need).
    Opaque,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct TensorRef {
    pub key: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

pub(super) fn take<'a>(bytes: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("truncated file: {n} bytes needed at offset {pos}"))?;
    let out = &bytes[*pos..end];
    *pos = end;
    Ok(out)
}

fn as_usize_list(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) => usize::try_from(*n).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn element_size(storage_type: &str) -> Option<usize> {
    Some(match storage_type.rsplit('.').next()? {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "ShortStorage" | "BFloat16Storage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        _ => return None,
    })
}

/// `pid` of a BINPERSID: `('storage', type, key, location, numel[, view])`.
fn persistent_load(pid: Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err("a persistent id is not a tuple".into());
    };
    match items.as_slice() {
        [Value::Str(kind), Value::Global(ty), Value::Str(key), ..] if kind == "storage" => {
            let element_size =
                element_size(ty).ok_or_else(|| format!("unsupported storage type {ty}"))?;
            Ok(Value::Storage {
                key: key.clone(),
                element_size,
            })
        }
        _ => Err("unsupported persistent id".into()),
    }
}

/// `callable(*args)` for the few callables a state dict uses.
fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Ok(Value::Opaque);
    };
    let Value::Tuple(args) = args else {
        return Err(format!("{name}: arguments are not a tuple"));
    };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let (
                Some(Value::Storage { key, .. }),
                Some(Value::Int(offset)),
                Some(size),
                Some(stride),
            ) = (args.first(), args.get(1), args.get(2), args.get(3))
            else {
                return Err(format!("{name}: unexpected arguments"));
            };
            let shape = as_usize_list(size).ok_or("bad tensor size")?;
            let stride = as_usize_list(stride).ok_or("bad tensor stride")?;
            if shape.len() != stride.len() {
                return Err("tensor size and stride differ in rank".into());
            }
            Ok(Value::Tensor(TensorRef {
                key: key.clone(),
                offset: usize::try_from(*offset).map_err(|_| "negative storage offset")?,
                shape,
                stride,
            }))
        }
        "torch._utils._rebuild_parameter" => Ok(args.into_iter().next().unwrap_or(Value::None)),
        _ => Ok(Value::Opaque),
    }
}

/// Runs one pickle starting at `*pos`, leaving `*pos` after its STOP.
pub(super) fn unpickle(bytes: &[u8], pos: &mut usize) -> Result<Value, String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let pop = |stack: &mut Vec<Value>| {
        stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    };
    let pop_mark = |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>, String> {
        let m = marks.pop().ok_or("pickle MARK missing")?;
        if m > stack.len() {
            return Err("pickle MARK beyond the stack".into());
        }
        Ok(stack.split_off(m))
    };
    loop {
        if stack.len() > MAX_STACK {
            return Err("pickle stack too deep".into());
        }
        let op = take(bytes, pos, 1)?[0];
        match op {
            0x80 => {
                take(bytes, pos, 1)?; // PROTO
            }
            b'.' => return pop(&mut stack),  // STOP
            b'(' => marks.push(stack.len()), // MARK
            b'}' => stack.push(Value::Dict(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => stack.push(Value::Int(i64::from(take(bytes, pos, 1)?[0]))),
            b'M' => {
                let b = take(bytes, pos, 2)?;
                stack.push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
            }
            b'J' => {
                let b = take(bytes, pos, 4)?;
                stack.push(Value::Int(i64::from(i32::from_le_bytes([
                    b[0], b[1], b[2], b[3],
                ]))));
            }
            0x8a => {
                // LONG1: n-byte two's complement little-endian.
                let n = usize::from(take(bytes, pos, 1)?[0]);
                let b = take(bytes, pos, n)?;
                if n <= 8 {
                    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        0xff
                    } else {
                        0
                    };
                    let mut buf = [fill; 8];
                    buf[..n].copy_from_slice(b);
                    stack.push(Value::Int(i64::from_le_bytes(buf)));
                } else {
                    stack.push(Value::BigInt(b.to_vec()));
                }
            }
            b'G' => {
                let b = take(bytes, pos, 8)?;
                stack.push(Value::Float(f64::from_be_bytes(
                    b.try_into().unwrap_or([0; 8]),
                )));
            }
            b'X' | 0x8c | b'T' | b'U' => {
                // BINUNICODE, SHORT_BINUNICODE, BINSTRING, SHORT_BINSTRING
                let n = if op == b'X' || op == b'T' {
                    let b = take(bytes, pos, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                } else {
                    usize::from(take(bytes, pos, 1)?[0])
                };
                let s = take(bytes, pos, n)?;
                stack.push(Value::Str(String::from_utf8_lossy(s).into_owned()));
            }
            b'q' => {
                let i = u32::from(take(bytes, pos, 1)?[0]);
                memo.insert(i, stack.last().ok_or("BINPUT on an empty stack")?.clone());
            }
            b'r' => {
                let b = take(bytes, pos, 4)?;
                let i = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                memo.insert(
                    i,
                    stack.last().ok_or("LONG_BINPUT on an empty stack")?.clone(),
                );
            }
            0x94 => {
                // MEMOIZE
                let i = memo.len() as u32;
                memo.insert(i, stack.last().ok_or("MEMOIZE on an empty stack")?.clone());
            }
            b'h' | b'j' => {
                let i = if op == b'h' {
                    u32::from(take(bytes, pos, 1)?[0])
                } else {
                    let b = take(bytes, pos, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                };
                let v = memo
                    .get(&i)
                    .ok_or_else(|| format!("pickle memo {i} is empty"))?;
                stack.push(v.clone());
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err("pickle stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.push(v),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) => l.extend(items),
                    _ => return Err("APPENDS to a non-list".into()),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(d)) => d.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' | b'd' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                if items.len() % 2 != 0 {
                    return Err("odd number of dict items".into());
                }
                let mut it = items.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                if op == b'd' {
                    stack.push(Value::Dict(pairs));
                } else {
                    match stack.last_mut() {
                        Some(Value::Dict(d)) => d.extend(pairs),
                        _ => return Err("SETITEMS on a non-dict".into()),
                    }
                }
            }
            b'c' => {
                let mut line = || -> Result<String, String> {
                    let rest = bytes.get(*pos..).unwrap_or(&[]);
                    let n = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("unterminated GLOBAL")?;
                    let s = String::from_utf8_lossy(&rest[..n]).into_owned();
                    *pos += n + 1;
                    Ok(s)
                };
                let module = line()?;
                let name = line()?;
                stack.push(Value::Global(format!("{module}.{name}")));
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let callable = pop(&mut stack)?;
                stack.push(reduce(callable, args)?);
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args)
                let _args = pop(&mut stack)?;
                let _cls = pop(&mut stack)?;
                stack.push(Value::Opaque);
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(persistent_load(pid)?);
            }
            b'b' => {
                // BUILD: the state (e.g. an OrderedDict's `_metadata`) is not needed.
                pop(&mut stack)?;
                if stack.is_empty() {
                    return Err("BUILD on an empty stack".into());
                }
            }
            b'0' => {
                pop(&mut stack)?;
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}
