//! Arrow (arrow-rs, as DuckDB hands it over) ↔ Polars, whole columns at a time.
//!
//! Polars carries its own Arrow implementation (polars-arrow), so arrow-rs arrays cannot be
//! handed to it as they are. Two routes convert without touching rows one by one: the Arrow C
//! Data Interface (export each arrow-rs array, import it into polars-arrow) or the Arrow IPC
//! stream format (arrow-rs writes a stream, Polars' `IpcStreamReader` reads it). We use the IPC
//! stream: it is safe code on both sides, it is the format both projects test against other
//! implementations, and it does not tie us to the struct layouts of two crates' FFI modules.
//! Its cost is one copy of the column buffers each way, linear in bytes, with no work per value.
//!
//! Polars is built with few data types (see Cargo.toml), so a batch is first made to fit: small
//! integers widen, dictionaries decode, time zones drop (values stay UTC instants), decimals
//! become doubles, and types Polars has no counterpart for (intervals, times, structs, maps)
//! become their text. The mapping is `frame_type`.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::{can_cast_types, cast};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use polars::prelude::{DataFrame, IpcStreamReader, IpcStreamWriter, SerReader, SerWriter};

use crate::error::{Result, ResultsError};

/// The type a column takes in a frame; `None` when it becomes text.
fn frame_type(dt: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match dt {
        Null | Boolean | Int32 | Int64 | UInt32 | UInt64 | Float32 | Float64 | Utf8 | LargeUtf8 | Utf8View | Binary
        | LargeBinary | BinaryView | Date32 => dt.clone(),
        Int8 | Int16 => Int32,
        UInt8 | UInt16 => UInt32,
        Float16 => Float32,
        Date64 => Date32,
        // Polars has no second resolution; DuckDB's TIMESTAMPTZ is a UTC instant.
        Timestamp(TimeUnit::Second, _) => Timestamp(TimeUnit::Millisecond, None),
        Timestamp(unit, _) => Timestamp(*unit, None),
        Duration(TimeUnit::Second) => Duration(TimeUnit::Millisecond),
        Duration(unit) => Duration(*unit),
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => Float64,
        Dictionary(_, values) => return frame_type(values),
        List(f) | LargeList(f) | FixedSizeList(f, _) | ListView(f) | LargeListView(f) => {
            List(Arc::new(Field::new(f.name(), frame_type(f.data_type()).unwrap_or(Utf8), true)))
        }
        _ => return None,
    })
}

/// Makes a DuckDB result fit a frame (see the module docs). Errors name the column and say how
/// to select it differently.
pub(crate) fn fit_for_frame(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let target = frame_type(field.data_type());
        let castable = target.as_ref().is_none_or(|t| t == field.data_type() || can_cast_types(field.data_type(), t));
        if !castable {
            return Err(ResultsError::UnsupportedType {
                column: field.name().clone(),
                data_type: field.data_type().to_string(),
                hint: format!("select it as text instead, e.g. CAST({} AS VARCHAR)", field.name()),
            });
        }
        fields.push(Field::new(field.name(), target.unwrap_or(DataType::Utf8), true));
    }
    let target = Arc::new(Schema::new(fields));
    let batches = batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(target.fields())
                .map(|(array, field)| convert(array, field))
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(target.clone(), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((target, batches))
}

fn convert(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    if array.data_type() == field.data_type() {
        return Ok(array.clone());
    }
    if frame_type(array.data_type()).is_none() {
        return as_text(array);
    }
    cast(array, field.data_type()).map_err(|e| ResultsError::UnsupportedType {
        column: field.name().clone(),
        data_type: array.data_type().to_string(),
        hint: format!("it did not convert to {} ({e}); CAST it in the SQL", field.data_type()),
    })
}

/// A column Polars has no type for, as the text arrow-rs displays for each value (a struct
/// `{a: 1, b: x}`, an interval `1 hours 30 mins`); nulls stay null.
fn as_text(array: &ArrayRef) -> Result<ArrayRef> {
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    let text: StringArray =
        (0..array.len()).map(|i| array.is_valid(i).then(|| formatter.value(i).to_string())).collect();
    Ok(Arc::new(text))
}

/// Arrow batches → a Polars DataFrame, through one Arrow IPC stream in memory.
pub(crate) fn to_polars(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<DataFrame> {
    let (schema, batches) = fit_for_frame(schema, batches)?;
    let mut bytes = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut bytes, &schema)?;
        for batch in &batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(IpcStreamReader::new(Cursor::new(bytes)).finish()?)
}

/// A Polars DataFrame → Arrow batches, the same way back. Polars writes its oldest Arrow
/// flavour (large strings and lists rather than views), which arrow-rs and DuckDB both take.
pub(crate) fn from_polars(df: &DataFrame) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut bytes = Vec::new();
    IpcStreamWriter::new(&mut bytes).finish(&mut df.clone())?;
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}
