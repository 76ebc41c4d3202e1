//! Tensors as they cross between host and page: a name, an element type, dimensions and the
//! raw little-endian bytes. The bytes travel as HTTP bodies, never as JSON numbers.

use serde::{Deserialize, Serialize};

use crate::error::BrowserError;

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

    pub fn element_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values of a float tensor (float16 widens exactly). Integer types are an error, not
    /// a silent cast.
    pub fn to_f32(&self) -> Result<Vec<f32>, BrowserError> {
        match self.dtype {
            DType::Float32 => {
                Ok(self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::Float16 => {
                Ok(self.data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
            }
            other => Err(BrowserError::BadOutput(format!("output {} is {other:?}, expected a float type", self.name))),
        }
    }

    /// Checks that the byte length matches dims × element size.
    pub fn validate(&self) -> Result<(), BrowserError> {
        let expected = self.element_count() * self.dtype.size();
        if expected != self.data.len() {
            return Err(BrowserError::BadOutput(format!(
                "tensor {} has {} bytes but dims {:?} of {:?} need {}",
                self.name,
                self.data.len(),
                self.dims,
                self.dtype,
                expected
            )));
        }
        Ok(())
    }
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
