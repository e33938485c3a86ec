//! End-to-end tests: the real `iris-listener` and `iris-client` binaries,
//! run as processes (one test binary, to keep link time down).

mod auth;
mod client_cli;
mod concurrency;
mod formats;
mod handshake_limits;
mod links;
mod pickle_bombs;
mod python;
mod python_dropin;
mod readme;
mod reliability;
mod sealed_mitm;
mod sealed_python;
mod shutdown;
mod streaming;

/// The four measurements and the species of a flower, as `--flower` takes
/// them.
pub(crate) struct Flower {
    pub(crate) measurements: [f64; 4],
    pub(crate) species: &'static str,
}

impl Flower {
    /// The `--flower` value: `5.1,3.5,1.4,0.2,setosa`.
    pub(crate) fn arg(&self) -> String {
        let [a, b, c, d] = self.measurements;
        format!("{a},{b},{c},{d},{}", self.species)
    }

    /// The seed's `total_area()`: sepal area plus petal area.
    pub(crate) fn area(&self) -> f64 {
        let [sl, sw, pl, pw] = self.measurements;
        sl * sw + pl * pw
    }
}

/// One flower of each species, with three different areas.
pub(crate) const FLOWERS: [Flower; 3] = [
    Flower {
        measurements: [5.1, 3.5, 1.4, 0.2],
        species: "setosa",
    },
    Flower {
        measurements: [7.0, 3.2, 4.7, 1.4],
        species: "versicolor",
    },
    Flower {
        measurements: [6.3, 3.3, 6.0, 2.5],
        species: "virginica",
    },
];

/// Starts `clients` clients at once, client `i` sending `FLOWERS[i % 3]`
/// `repeat` times to `address`.
pub(crate) fn spawn_senders(address: &str, clients: usize, repeat: u64) -> Vec<iris_e2e::Process> {
    let repeat = repeat.to_string();
    (0..clients)
        .map(|i| {
            let flower = FLOWERS[i % FLOWERS.len()].arg();
            iris_e2e::spawn_client(
                &iris_e2e::client_args(
                    "send",
                    address,
                    &["--flower", &flower, "--repeat", &repeat],
                ),
                &[iris_e2e::KEY_ENV],
            )
        })
        .collect()
}

/// The number in an `Area: X` line.
pub(crate) fn area_of(line: &str) -> f64 {
    line.strip_prefix("Area: ")
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("not an `Area: <float>` line: {line:?}"))
}
