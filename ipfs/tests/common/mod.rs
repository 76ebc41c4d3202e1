//! Shared by the integration tests (each test file uses a part of it).
#![allow(dead_code)]

pub mod helia;
pub mod hostile;
pub mod proxy;
