//! The listener's standard output: one line per flower, from many
//! connections at once.
//!
//! Each connection formats into its own buffer and hands whole lines to
//! stdout under its lock, so lines from concurrent connections never mix
//! mid-line and the hot path takes no lock per flower. A connection
//! publishes its buffer when it is about to wait for the network (so a person
//! watching sees lines promptly), when the buffer fills, and before it
//! acknowledges `Close` (so an acknowledged flower has always been written).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use iris_model::{Iris, PyArea, PyFloatBuffer, PyIris, PyNumber, Species};
use serde::Serialize;

/// Areas formatted together, at most.
const AREA_BATCH: usize = 256;

/// Publish a connection's buffer once it holds this much.
const PUBLISH_THRESHOLD: usize = 64 << 10;

/// Appends `Area: <repr(area)>\n` to `out`, the seed's per-flower line,
/// without allocating beyond `out`'s own growth.
#[inline]
fn write_area_line(out: &mut Vec<u8>, area: f64) {
    let mut buffer = PyFloatBuffer::new();
    let text = buffer.format(area);
    out.reserve(b"Area: \n".len() + text.len());
    out.extend_from_slice(b"Area: ");
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Appends the seed's line for a Python client's flower: [`write_area_line`]
/// for a `float` area, the digits for an `int` one.
fn write_py_area_line(out: &mut Vec<u8>, area: PyArea) {
    match area {
        PyArea::Float(x) => write_area_line(out, x),
        PyArea::Int(i) => {
            // Writing into a Vec cannot fail.
            let _ = writeln!(out, "Area: {i}");
        }
    }
}

/// How flowers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `Area: 18.13`, exactly as the seed's Python listener prints it.
    Text,
    /// One JSON object per line: the flower, its area, and its connection.
    Json,
}

/// Flower counts, per species.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) per_species: [u64; 3],
}

impl Counts {
    pub(crate) fn add(&mut self, species: Species) {
        self.per_species[species as usize] += 1;
    }

    pub(crate) fn total(&self) -> u64 {
        self.per_species.iter().sum()
    }

    pub(crate) fn merge(&mut self, other: &Counts) {
        for (mine, theirs) in self.per_species.iter_mut().zip(other.per_species) {
            *mine += theirs;
        }
    }
}

/// The process-wide output: stdout, and the counts of what reached it.
#[derive(Debug)]
pub(crate) struct Output {
    format: Format,
    printed: Mutex<Counts>,
    closed: AtomicBool,
}

/// The stdout was closed by its reader (e.g. `| head`).
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl Output {
    pub(crate) fn new(format: Format) -> Self {
        Output {
            format,
            printed: Mutex::new(Counts::default()),
            closed: AtomicBool::new(false),
        }
    }

    /// How many flowers have been written to stdout.
    pub(crate) fn printed(&self) -> Counts {
        *self.printed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops all output for good and returns exactly what was written:
    /// for the summary of a listener that exits with sessions still open.
    /// A thread takes stdout's lock (waiting for a session that is writing
    /// to finish its lines), reads the counts and keeps the lock until the
    /// process exits, so no line is written after the count. `None` if the
    /// lock does not come `within` (stdout blocked by its reader).
    pub(crate) fn freeze(self: &Arc<Self>, within: Duration) -> Option<Counts> {
        let (sender, counts) = mpsc::channel();
        let output = Arc::clone(self);
        thread::Builder::new()
            .name("freeze".into())
            .spawn(move || {
                let _stdout = io::stdout().lock();
                let _ = sender.send(output.printed());
                loop {
                    thread::park();
                }
            })
            .ok()?;
        counts.recv_timeout(within).ok()
    }

    /// Whether stdout's reader went away.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn publish(&self, lines: &[u8], counts: &Counts) -> Result<(), StdoutClosed> {
        if self.is_closed() {
            return Err(StdoutClosed);
        }
        let mut stdout = io::stdout().lock();
        // Whole lines under the lock; stdout's own buffer passes them through
        // in one write because they end in a newline.
        match stdout.write_all(lines).and_then(|()| stdout.flush()) {
            Ok(()) => {
                self.printed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .merge(counts);
                Ok(())
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    tracing::info!("stdout was closed by its reader; stopping");
                } else {
                    tracing::error!("cannot write to stdout: {e}; stopping");
                }
                self.closed.store(true, Ordering::Relaxed);
                Err(StdoutClosed)
            }
        }
    }
}

/// One connection's pending output.
#[derive(Debug)]
pub(crate) struct ConnectionOutput<'a> {
    output: &'a Output,
    connection: u64,
    lines: Vec<u8>,
    /// Areas received but not formatted yet (text format only).
    areas: Vec<f64>,
    pending: Counts,
    received: Counts,
}

/// One JSON line. Generic over the number type so that a Python client's
/// `int` measurements and area come out as JSON integers, as Python has them.
#[derive(Serialize)]
struct JsonFlower<M, A> {
    connection: u64,
    species: &'static str,
    sepal_length: M,
    sepal_width: M,
    petal_length: M,
    petal_width: M,
    area: A,
}

impl<'a> ConnectionOutput<'a> {
    pub(crate) fn new(output: &'a Output, connection: u64) -> Self {
        ConnectionOutput {
            output,
            connection,
            lines: Vec::new(),
            areas: Vec::new(),
            pending: Counts::default(),
            received: Counts::default(),
        }
    }

    /// Formats one flower's line.
    pub(crate) fn flower(&mut self, iris: &Iris) -> Result<(), StdoutClosed> {
        match self.output.format {
            Format::Text => {
                self.areas.push(iris.total_area());
                if self.areas.len() == AREA_BATCH {
                    self.format_areas();
                }
            }
            Format::Json => self.json(&JsonFlower {
                connection: self.connection,
                species: iris.species().as_str(),
                sepal_length: iris.sepal_length(),
                sepal_width: iris.sepal_width(),
                petal_length: iris.petal_length(),
                petal_width: iris.petal_width(),
                area: iris.total_area(),
            }),
        }
        self.count(iris.species())
    }

    /// Formats the line of a flower from a Python client. Off the native
    /// hot path: an `int` area is written at once, after the batched float
    /// areas, so lines keep their arrival order.
    pub(crate) fn python_flower(&mut self, flower: &PyIris) -> Result<(), StdoutClosed> {
        let area = flower.total_area();
        match (self.output.format, area) {
            (Format::Text, PyArea::Float(area)) => {
                self.areas.push(area);
                if self.areas.len() == AREA_BATCH {
                    self.format_areas();
                }
            }
            (Format::Text, PyArea::Int(_)) => {
                self.format_areas();
                write_py_area_line(&mut self.lines, area);
            }
            (Format::Json, _) => {
                let [sepal_length, sepal_width, petal_length, petal_width]: [PyNumber; 4] =
                    flower.measurements();
                self.json(&JsonFlower {
                    connection: self.connection,
                    species: flower.iris().species().as_str(),
                    sepal_length,
                    sepal_width,
                    petal_length,
                    petal_width,
                    area,
                });
            }
        }
        self.count(flower.iris().species())
    }

    fn json(&mut self, record: &impl Serialize) {
        // Writing plain numbers and strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.lines, record);
        self.lines.push(b'\n');
    }

    /// Counts a formatted flower and publishes a full buffer.
    fn count(&mut self, species: Species) -> Result<(), StdoutClosed> {
        self.pending.add(species);
        self.received.add(species);
        if self.lines.len() >= PUBLISH_THRESHOLD {
            self.publish()?;
        }
        Ok(())
    }

    /// Formats the batched areas: one tight loop keeps the formatter's code
    /// and tables hot, instead of alternating with decoding per flower.
    fn format_areas(&mut self) {
        for &area in &self.areas {
            write_area_line(&mut self.lines, area);
        }
        self.areas.clear();
    }

    /// Writes the pending lines to stdout.
    pub(crate) fn publish(&mut self) -> Result<(), StdoutClosed> {
        self.format_areas();
        if self.lines.is_empty() {
            return Ok(());
        }
        self.output.publish(&self.lines, &self.pending)?;
        self.lines.clear();
        self.pending = Counts::default();
        Ok(())
    }

    /// How many flowers this connection has received.
    pub(crate) fn received(&self) -> Counts {
        self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_lines_are_the_seeds() {
        let mut out = b"x\n".to_vec();
        write_area_line(&mut out, 18.13);
        write_area_line(&mut out, 1e16);
        write_py_area_line(&mut out, PyArea::Int(16));
        write_py_area_line(&mut out, PyArea::Float(16.0));
        write_py_area_line(&mut out, PyArea::Int(i128::from(i64::MAX) * 2));
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "x\nArea: 18.13\nArea: 1e+16\nArea: 16\nArea: 16.0\nArea: 18446744073709551614\n"
        );
    }

    fn flower(species: Species) -> Iris {
        Iris::new(5.1, 3.5, 1.4, 0.2, species).expect("valid")
    }

    #[test]
    fn text_lines_match_the_python_listener() {
        let output = Output::new(Format::Text);
        let mut connection = ConnectionOutput::new(&output, 1);
        connection
            .flower(&flower(Species::Setosa))
            .expect("formatted");
        // Areas are formatted in batches, at the latest when published.
        connection.format_areas();
        assert_eq!(connection.lines, b"Area: 18.13\n");
        assert_eq!(connection.received().total(), 1);
    }

    #[test]
    fn a_full_batch_is_formatted_in_arrival_order() {
        let output = Output::new(Format::Text);
        let mut connection = ConnectionOutput::new(&output, 1);
        let small = Iris::new(1.0, 1.0, 1.0, 1.0, Species::Setosa).expect("valid");
        for i in 0..AREA_BATCH {
            let iris = if i == 0 {
                flower(Species::Setosa)
            } else {
                small
            };
            connection.flower(&iris).expect("formatted");
        }
        let text = String::from_utf8(connection.lines.clone()).expect("utf-8");
        assert_eq!(text.lines().count(), AREA_BATCH);
        assert!(text.starts_with("Area: 18.13\nArea: 2.0\n"), "{text:.40}");
        assert!(connection.areas.is_empty());
    }

    #[test]
    fn json_lines_carry_the_flower_and_its_connection() {
        let output = Output::new(Format::Json);
        let mut connection = ConnectionOutput::new(&output, 7);
        connection
            .flower(&flower(Species::Virginica))
            .expect("formatted");
        let line = std::str::from_utf8(&connection.lines).expect("utf-8");
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(value["connection"], 7);
        assert_eq!(value["species"], "virginica");
        assert_eq!(value["area"], 18.13);
        assert_eq!(value["petal_width"], 0.2);
    }

    #[test]
    fn python_flowers_print_int_areas_as_python_in_arrival_order() {
        let ints =
            PyIris::new([5, 3, 1, 1].map(PyNumber::Int), Species::Versicolor).expect("valid");
        let output = Output::new(Format::Text);
        let mut connection = ConnectionOutput::new(&output, 1);
        connection
            .python_flower(&PyIris::from(flower(Species::Setosa)))
            .expect("formatted");
        connection.python_flower(&ints).expect("formatted");
        connection
            .flower(&flower(Species::Setosa))
            .expect("formatted");
        connection.format_areas();
        assert_eq!(connection.lines, b"Area: 18.13\nArea: 16\nArea: 18.13\n");
        assert_eq!(connection.received().total(), 3);

        let output = Output::new(Format::Json);
        let mut connection = ConnectionOutput::new(&output, 2);
        connection.python_flower(&ints).expect("formatted");
        assert_eq!(
            std::str::from_utf8(&connection.lines).expect("utf-8"),
            "{\"connection\":2,\"species\":\"versicolor\",\"sepal_length\":5,\"sepal_width\":3,\
             \"petal_length\":1,\"petal_width\":1,\"area\":16}\n"
        );
    }

    #[test]
    fn counts_add_up_per_species() {
        let mut counts = Counts::default();
        counts.add(Species::Setosa);
        counts.add(Species::Virginica);
        counts.add(Species::Virginica);
        let mut total = Counts::default();
        total.merge(&counts);
        total.merge(&counts);
        assert_eq!(total.per_species, [2, 0, 4]);
        assert_eq!(total.total(), 6);
    }
}
