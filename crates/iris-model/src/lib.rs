//! The data model shared by the iris listener and client: the [`Iris`]
//! flower record, its CSV data set, a formatter that prints floats exactly
//! as CPython does ([`py_float`]), and Python's number semantics for the
//! flowers Python programs send ([`py_number`]). The messages on the wire
//! are the `iris-protocol` crate's.
//!
//! ```
//! use iris_model::py_float::PyRepr;
//! use iris_model::{Iris, Species};
//!
//! let flower = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa)?;
//! let line = format!("Area: {}", PyRepr(flower.total_area()));
//! println!("{line}");
//! assert_eq!(line, "Area: 18.13"); // what Python prints for the same flower
//!
//! // Deserializing validates, as every way of making an Iris does.
//! let bytes = postcard::to_stdvec(&flower)?;
//! let decoded: Iris = postcard::from_bytes(&bytes)?;
//! assert_eq!(decoded, flower);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An `Iris` can only be built through validation ([`Iris::new`], the data
//! set loader, or deserialization), so code that receives one need not
//! re-check its measurements.

pub mod dataset;
mod error;
mod iris;
pub mod py_float;
pub mod py_number;
mod species;

pub use dataset::{IrisReader, load_csv, read_csv};
pub use error::{DatasetError, ModelError};
pub use iris::{Iris, MEASUREMENTS};
pub use py_float::{PyFloatBuffer, PyRepr, py_repr};
pub use py_number::{PyArea, PyIris, PyNumber};
pub use species::Species;
