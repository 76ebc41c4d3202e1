//! Tensors as webaccel's runtimes take and give them: a name, an element type, dimensions and
//! the raw little-endian bytes. Between host and page the bytes travel as binary frames, never
//! as JSON numbers; the native runtime hands the same bytes to onnxruntime. Both runtimes sit on
//! this crate and neither knows the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod generation;
pub use generation::{Generation, GenerationSample, Sampling};

/// A tensor that is not what its use needs.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("tensor {name} is {dtype:?}, expected a float type")]
    NotFloat { name: String, dtype: DType },
    #[error("tensor {name} is {dtype:?}, expected int64")]
    NotInt64 { name: String, dtype: DType },
    #[error("tensor {name} has {bytes} bytes but dims {dims:?} of {dtype:?} need {expected}")]
    Length { name: String, bytes: usize, dims: Vec<usize>, dtype: DType, expected: String },
}

/// Element types that onnxruntime-web accepts as `ort.Tensor` types, named as ORT names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Float32,
    Float16,
    Int64,
    Int32,
    Int8,
    Uint8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Float16 => 2,
            DType::Int64 => 8,
            DType::Int8 | DType::Uint8 | DType::Bool => 1,
        }
    }

    /// ORT's name for the type, as `InputMetadata::dtype` and the page spell it.
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float16 => "float16",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Int8 => "int8",
            DType::Uint8 => "uint8",
            DType::Bool => "bool",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor {
    pub fn from_i64(name: impl Into<String>, dims: Vec<usize>, values: &[i64]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor { name: name.into(), dtype: DType::Int64, dims, data }
    }

    pub fn from_f32(name: impl Into<String>, dims: Vec<usize>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor { name: name.into(), dtype: DType::Float32, dims, data }
    }

    /// Float values as float16 (rounded to nearest), for graphs whose inputs are fp16.
    pub fn from_f32_as_f16(name: impl Into<String>, dims: Vec<usize>, values: &[f32]) -> Self {
        let data = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        Tensor { name: name.into(), dtype: DType::Float16, dims, data }
    }

    /// The number of elements, or None when the dims' product overflows.
    pub fn element_count(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// The values of a float tensor (float16 widens exactly). Integer types are an error, not
    /// a silent cast.
    pub fn to_f32(&self) -> Result<Vec<f32>, TensorError> {
        match self.dtype {
            DType::Float32 => {
                Ok(self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::Float16 => {
                Ok(self.data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
            }
            dtype => Err(TensorError::NotFloat { name: self.name.clone(), dtype }),
        }
    }

    /// The values of an int64 tensor (token ids); other types are an error.
    pub fn to_i64(&self) -> Result<Vec<i64>, TensorError> {
        match self.dtype {
            DType::Int64 => Ok(self.data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
            dtype => Err(TensorError::NotInt64 { name: self.name.clone(), dtype }),
        }
    }

    /// Checks that the byte length matches dims × element size.
    pub fn validate(&self) -> Result<(), TensorError> {
        let expected = self.element_count().and_then(|n| n.checked_mul(self.dtype.size()));
        if expected != Some(self.data.len()) {
            return Err(TensorError::Length {
                name: self.name.clone(),
                bytes: self.data.len(),
                dims: self.dims.clone(),
                dtype: self.dtype,
                expected: expected.map_or_else(|| "more than this machine can address".into(), |n| n.to_string()),
            });
        }
        Ok(())
    }

    /// How many of a float tensor's values are NaN and how many are infinite (0, 0 for integer
    /// types, which cannot be either).
    pub fn non_finite(&self) -> (usize, usize) {
        let Ok(values) = self.to_f32() else { return (0, 0) };
        values.iter().fold((0, 0), |(nan, inf), v| (nan + v.is_nan() as usize, inf + v.is_infinite() as usize))
    }
}

/// One graph input as a runtime reports it (ORT-web's `inputMetadata`, or native onnxruntime's
/// session inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputMetadata {
    pub name: String,
    /// ORT's element type name ("float32", "int64", ...); None for non-tensor inputs.
    #[serde(rename = "type")]
    pub dtype: Option<String>,
    /// Each dimension: a number, or the name of a symbolic one.
    pub shape: Vec<serde_json::Value>,
}

/// A recurrent model run over a sequence: the input `over` holds one step per row of its
/// first dimension; after each step the outputs named in `carry` feed the inputs they map to.
/// The collected outputs come back stacked along a new first dimension, one row per step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sequence {
    pub over: String,
    pub carry: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trip_and_validation() {
        let t = Tensor::from_f32("x", vec![2, 2], &[1.0, -2.5, 3.25, 0.0]);
        t.validate().unwrap();
        assert_eq!(t.to_f32().unwrap(), vec![1.0, -2.5, 3.25, 0.0]);
        let bad = Tensor { dims: vec![3, 2], ..t };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn f16_round_trip() {
        let t = Tensor::from_f32_as_f16("x", vec![3], &[1.0, -0.5, 65504.0]);
        assert_eq!((t.dtype, t.data.len()), (DType::Float16, 6));
        assert_eq!(t.to_f32().unwrap(), vec![1.0, -0.5, 65504.0]);
    }

    #[test]
    fn int64_is_not_read_as_float() {
        let t = Tensor::from_i64("ids", vec![1, 2], &[101, 102]);
        assert_eq!(t.data.len(), 16);
        assert!(t.to_f32().is_err());
    }
}
