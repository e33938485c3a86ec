//! Many clients at once.

use std::collections::BTreeMap;

use iris_e2e::{KEY_ENV, ListenerProcess};

use crate::{FLOWERS, area_of, spawn_senders};

const CLIENTS: usize = 50;
const FLOWERS_PER_CLIENT: u64 = 1_000;

#[test]
fn fifty_clients_sending_a_thousand_flowers_each_are_all_counted() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    // Client i sends FLOWERS[i % 3], a thousand times; all at once.
    let clients = spawn_senders(listener.address(), CLIENTS, FLOWERS_PER_CLIENT);
    let mut expected_per_species = [0; 3];
    for (i, client) in clients.into_iter().enumerate() {
        let finished = client.finish();
        finished.assert_code(0);
        assert_eq!(
            finished.acknowledgement(),
            Some((FLOWERS_PER_CLIENT, FLOWERS_PER_CLIENT)),
            "client {i}\n{}",
            finished.describe()
        );
        expected_per_species[i % FLOWERS.len()] += FLOWERS_PER_CLIENT;
    }

    let finished = listener.stop();
    finished.assert_code(0);
    let total = CLIENTS as u64 * FLOWERS_PER_CLIENT;

    // Every flower printed once, with its own area, and nothing else.
    assert_eq!(
        finished.stdout.len() as u64,
        total,
        "{}",
        finished.describe()
    );
    let mut per_line: BTreeMap<&str, u64> = BTreeMap::new();
    for line in &finished.stdout {
        *per_line.entry(line.as_str()).or_default() += 1;
    }
    for (flower, expected) in FLOWERS.iter().zip(expected_per_species) {
        let printed: u64 = per_line
            .iter()
            .filter(|(line, _)| area_of(line) == flower.area())
            .map(|(_, count)| count)
            .sum();
        assert_eq!(
            printed,
            expected,
            "`Area: {}` lines for {}; all lines: {per_line:?}",
            flower.area(),
            flower.species
        );
    }

    let summary = finished.summary();
    assert_eq!(
        summary.get("connections"),
        CLIENTS as u64,
        "{}",
        summary.line
    );
    assert_eq!(summary.get("rejected"), 0, "{}", summary.line);
    assert_eq!(summary.get("flowers"), total, "{}", summary.line);
    for (flower, expected) in FLOWERS.iter().zip(expected_per_species) {
        assert_eq!(summary.get(flower.species), expected, "{}", summary.line);
    }
}
