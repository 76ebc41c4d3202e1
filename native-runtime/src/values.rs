//! webaccel's tensors to onnxruntime values and back. The bytes are little-endian, as the page
//! and the browser runtime keep them, so a model sees the same input on every runtime.

use ort::value::{DynValue, Tensor as OrtTensor, TensorElementType, ValueType};
use webaccel_tensor::{DType, InputMetadata, Tensor};

use crate::error::NativeError;

fn shape(t: &Tensor) -> Vec<i64> {
    t.dims.iter().map(|&d| d as i64).collect()
}

/// One tensor as an onnxruntime value (its bytes copied once).
pub(crate) fn to_value(t: &Tensor) -> Result<DynValue, NativeError> {
    t.validate()?;
    let bad = |e: ort::Error| NativeError::Input { name: t.name.clone(), problem: e.to_string() };
    macro_rules! typed {
        ($width:literal, $convert:expr) => {{
            let values: Vec<_> = t.data.chunks_exact($width).map($convert).collect();
            OrtTensor::from_array((shape(t), values)).map_err(bad)?.into_dyn()
        }};
    }
    Ok(match t.dtype {
        DType::Float32 => typed!(4, |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        DType::Float16 => typed!(2, |c: &[u8]| half::f16::from_le_bytes([c[0], c[1]])),
        DType::Int64 => typed!(8, |c: &[u8]| i64::from_le_bytes(c.try_into().expect("chunks of 8"))),
        DType::Int32 => typed!(4, |c: &[u8]| i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        DType::Int8 => typed!(1, |c: &[u8]| c[0] as i8),
        DType::Uint8 => typed!(1, |c: &[u8]| c[0]),
        DType::Bool => typed!(1, |c: &[u8]| c[0] != 0),
    })
}

/// An onnxruntime output as a webaccel tensor named `name`.
pub(crate) fn from_value(name: &str, value: &DynValue) -> Result<Tensor, NativeError> {
    let unsupported = |dtype: String| NativeError::UnsupportedOutput { name: name.to_string(), dtype };
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(unsupported(format!("{}", value.dtype())));
    };
    macro_rules! typed {
        ($t:ty, $dtype:expr, $bytes:expr) => {{
            let (shape, values) = value.try_extract_tensor::<$t>().map_err(|e| unsupported(e.to_string()))?;
            let dims = shape.iter().map(|&d| d.max(0) as usize).collect();
            Tensor { name: name.to_string(), dtype: $dtype, dims, data: values.iter().flat_map($bytes).collect() }
        }};
    }
    Ok(match ty {
        TensorElementType::Float32 => typed!(f32, DType::Float32, |v: &f32| v.to_le_bytes()),
        TensorElementType::Float16 => typed!(half::f16, DType::Float16, |v: &half::f16| v.to_le_bytes()),
        TensorElementType::Int64 => typed!(i64, DType::Int64, |v: &i64| v.to_le_bytes()),
        TensorElementType::Int32 => typed!(i32, DType::Int32, |v: &i32| v.to_le_bytes()),
        TensorElementType::Int8 => typed!(i8, DType::Int8, |v: &i8| v.to_le_bytes()),
        TensorElementType::Uint8 => typed!(u8, DType::Uint8, |v: &u8| [*v]),
        TensorElementType::Bool => typed!(bool, DType::Bool, |v: &bool| [*v as u8]),
        other => return Err(unsupported(element_name(*other))),
    })
}

/// ORT's name for an element type, as ORT-web spells it.
fn element_name(ty: TensorElementType) -> String {
    match ty {
        TensorElementType::Float32 => "float32".into(),
        TensorElementType::Float16 => "float16".into(),
        TensorElementType::Float64 => "float64".into(),
        TensorElementType::Int64 => "int64".into(),
        TensorElementType::Int32 => "int32".into(),
        TensorElementType::Int8 => "int8".into(),
        TensorElementType::Uint8 => "uint8".into(),
        TensorElementType::Bool => "bool".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A graph input as `InputMetadata`, the form the page reports: symbolic dimensions by name
/// (an unnamed dynamic one as "?").
pub(crate) fn metadata(name: &str, dtype: &ValueType) -> InputMetadata {
    match dtype {
        ValueType::Tensor { ty, shape, dimension_symbols } => InputMetadata {
            name: name.to_string(),
            dtype: Some(element_name(*ty)),
            shape: shape
                .iter()
                .zip(dimension_symbols.iter())
                .map(|(&d, symbol)| match (d, symbol.is_empty()) {
                    (d, _) if d >= 0 => serde_json::Value::from(d),
                    (_, false) => serde_json::Value::from(symbol.as_str()),
                    (_, true) => serde_json::Value::from("?"),
                })
                .collect(),
        },
        _ => InputMetadata { name: name.to_string(), dtype: None, shape: vec![] },
    }
}
