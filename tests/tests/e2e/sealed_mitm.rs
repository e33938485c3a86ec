//! Issue 10's acceptance, end to end: a man in the middle on loopback
//! between the real `iris-client` and `iris-listener`. Whatever it changes
//! after the handshake (a flipped byte anywhere, a dropped, duplicated,
//! reordered, cut or replayed record) ends that one connection with a
//! logged reason and nothing of it printed; whatever it changes in either
//! seal mark fails the handshake, and cannot talk a side that requires
//! sealing down to an unsealed session; what it reads of a sealed session
//! holds none of the flowers. CPython peers still work, unsealed and logged
//! as such, and `--require-sealed` refuses them.
//!
//! The relay cuts each direction into units, a 4-byte big-endian length and
//! that many bytes: the handshake's frames, then the records (whose headers
//! read the same way). The client's first two frames are its answer and its
//! challenge (in either order), the third its record 0, the sealed
//! `#WELCOME#` (docs/PROTOCOL.md §4.4 and §4.5); its data records follow.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};

use iris_e2e::{
    Finished, KEY_ENV, ListenerProcess, Summary, client_args, iris_csv, run_client, timeout,
};
use iris_protocol::native::IRIS_MESSAGE_LEN;
use iris_testkit::pythons;
use iris_wire::frame::SHORT_HEADER_LEN;
use iris_wire::handshake::{
    CHALLENGE_PREFIX, CLIENT_SEAL_MARK, LISTENER_SEAL_MARK, SEAL_KEY_LEN, WELCOME,
};
use iris_wire::seal::{MAX_RECORD_PLAINTEXT, RECORD_HEADER_LEN, TAG_LEN};
use socket2::{Domain, Socket, Type};

use crate::area_of;
use crate::python_dropin::{looped_seed_client, looped_seed_listener, port_of};

/// A native flower's frame: its length header and its message.
const FLOWER_FRAME: usize = SHORT_HEADER_LEN + IRIS_MESSAGE_LEN;
/// The native `Close` frame: a length header and the variant byte.
const CLOSE_FRAME: usize = SHORT_HEADER_LEN + 1;
/// The client's plain handshake frames, before its records: its answer and
/// its challenge (in either order: pipelined or fast open).
const CLIENT_HANDSHAKE_FRAMES: usize = 2;
/// Flowers per tampered connection: enough for five data records (each
/// flush seals 64 KiB and the few bytes over it), so that a fault in any of
/// the first three always has records after it.
const FLOWERS_PER_SEND: u64 = 4_000;
/// A mark and its key, as they end a marked challenge.
const MARK_LEN: usize = LISTENER_SEAL_MARK.len() + SEAL_KEY_LEN;

/// What the relay does to the traffic. Records are numbered as the
/// listener numbers the client's records: 0 is the sealed `#WELCOME#`,
/// 1 the first data record.
#[derive(Clone, Debug)]
enum Fault {
    /// Everything passes unchanged.
    None,
    /// XORs `mask` into the byte at `offset` of the client's data records
    /// (counted from the header of record 1).
    Flip { offset: usize, mask: u8 },
    /// Record `k` never arrives.
    Drop(usize),
    /// Record `k` arrives twice.
    Duplicate(usize),
    /// Records `k` and `k + 1` arrive in the other order.
    Swap(usize),
    /// Record `k` is replaced by another (a record of another session).
    Replace(usize, Vec<u8>),
    /// Only the first `keep` bytes of record `record` arrive, and then the
    /// end of the stream, as if the connection were cut there.
    Cut { record: usize, keep: usize },
    /// Record `k - 1` is held back and sent in one write with record `k`,
    /// whose last byte is flipped: the listener gets both in one read.
    FlipAfterHeld(usize),
    /// The mark (and key) at the end of a challenge is cut off.
    StripMark(Side),
    /// One byte of a challenge's mark or key (`at`, from the mark's start)
    /// is changed.
    AlterMark(Side, usize),
}

/// Whose challenge a mark fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Listener,
    Client,
}

impl Fault {
    /// The edit of one unit (frame or record, header included) of the
    /// client's stream, `index` counting from its first frame: the units
    /// to send instead.
    fn client_editor(&self) -> impl FnMut(usize, Vec<u8>) -> Forward + Send + 'static {
        let fault = self.clone();
        let mut held: Option<Vec<u8>> = None;
        let mut data_offset = 0;
        move |index, mut unit| {
            if index < CLIENT_HANDSHAKE_FRAMES {
                if is_challenge(&unit) {
                    match fault {
                        Fault::StripMark(Side::Client) => strip_mark(&mut unit),
                        Fault::AlterMark(Side::Client, at) => alter_mark(&mut unit, at),
                        _ => {}
                    }
                }
                return vec![unit].into();
            }
            let record = index - CLIENT_HANDSHAKE_FRAMES;
            let start = data_offset;
            if record >= 1 {
                data_offset += unit.len();
            }
            let units = match &fault {
                Fault::Cut { record: k, keep } if record == *k => {
                    unit.truncate(*keep);
                    return Forward {
                        bytes: unit,
                        end: true,
                    };
                }
                Fault::Flip { offset, mask } if record >= 1 => {
                    if (start..data_offset).contains(offset) {
                        unit[offset - start] ^= mask;
                    }
                    vec![unit]
                }
                Fault::Drop(k) if record == *k => Vec::new(),
                Fault::Duplicate(k) if record == *k => vec![unit.clone(), unit],
                Fault::Swap(k) if record == *k => {
                    held = Some(unit);
                    Vec::new()
                }
                Fault::Swap(k) if record == k + 1 => {
                    vec![unit, held.take().expect("the record held back")]
                }
                Fault::Replace(k, other) if record == *k => vec![other.clone()],
                Fault::FlipAfterHeld(k) if record + 1 == *k => {
                    held = Some(unit);
                    Vec::new()
                }
                Fault::FlipAfterHeld(k) if record == *k => {
                    *unit.last_mut().expect("a record") ^= 0x80;
                    vec![held.take().expect("the record held back"), unit]
                }
                _ => vec![unit],
            };
            units.into()
        }
    }

    /// The edit of the listener's stream: only its challenge (unit 0).
    fn listener_editor(&self) -> impl FnMut(usize, Vec<u8>) -> Forward + Send + 'static {
        let fault = self.clone();
        move |index, mut unit| {
            if index == 0 {
                match fault {
                    Fault::StripMark(Side::Listener) => strip_mark(&mut unit),
                    Fault::AlterMark(Side::Listener, at) => alter_mark(&mut unit, at),
                    _ => {}
                }
            }
            vec![unit].into()
        }
    }
}

/// What the relay sends for one unit it read.
struct Forward {
    bytes: Vec<u8>,
    /// Whether the stream ends after them.
    end: bool,
}

/// Units sent in one write, the stream going on.
impl From<Vec<Vec<u8>>> for Forward {
    fn from(units: Vec<Vec<u8>>) -> Forward {
        Forward {
            bytes: units.concat(),
            end: false,
        }
    }
}

fn is_challenge(unit: &[u8]) -> bool {
    unit[RECORD_HEADER_LEN..].starts_with(CHALLENGE_PREFIX)
}

/// Cuts the mark and key off a marked challenge frame, fixing its header.
fn strip_mark(unit: &mut Vec<u8>) {
    assert!(has_seal_mark(unit), "a sealing mark ends {unit:?}");
    unit.truncate(unit.len() - MARK_LEN);
    let len = u32::try_from(unit.len() - RECORD_HEADER_LEN).expect("a short frame");
    unit[..RECORD_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
}

/// Changes byte `at` of the mark and key that end a challenge frame.
fn alter_mark(unit: &mut [u8], at: usize) {
    assert!(has_seal_mark(unit), "a sealing mark ends {unit:?}");
    let start = unit.len() - MARK_LEN;
    unit[start + at] ^= 0x01;
}

fn has_seal_mark(unit: &[u8]) -> bool {
    let mark = &unit[unit.len().saturating_sub(MARK_LEN)..];
    mark.starts_with(LISTENER_SEAL_MARK) || mark.starts_with(CLIENT_SEAL_MARK)
}

/// What the relay saw of one connection.
#[derive(Debug)]
struct Relayed {
    /// The relay's end of its connection to the listener: the peer address
    /// the listener logs for it.
    upstream: SocketAddr,
    /// The client's stream as the client sent it, cut into its handshake
    /// frames and records (headers included).
    from_client: Vec<Vec<u8>>,
    /// The listener's stream as the listener sent it, cut likewise.
    from_listener: Vec<Vec<u8>>,
}

impl Relayed {
    /// The client's records (0: its sealed `#WELCOME#`).
    fn client_records(&self) -> &[Vec<u8>] {
        &self.from_client[CLIENT_HANDSHAKE_FRAMES.min(self.from_client.len())..]
    }

    /// The plaintext length of each of the client's data records.
    fn data_plaintext(&self) -> Vec<usize> {
        self.client_records()
            .iter()
            .skip(1)
            .map(|record| record.len() - RECORD_HEADER_LEN - TAG_LEN)
            .collect()
    }

    /// Every byte that crossed the relay, both ways.
    fn capture(&self) -> Vec<u8> {
        self.from_client
            .iter()
            .chain(&self.from_listener)
            .flatten()
            .copied()
            .collect()
    }
}

/// A man in the middle for one connection: accepts the client on a port of
/// its own, connects to the listener, and pumps both ways, applying a
/// fault.
struct Relay {
    address: String,
    pumping: JoinHandle<Relayed>,
}

impl Relay {
    fn start(listener: &str, fault: &Fault) -> Relay {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        // A client that never connects ends the wait in accept() after the
        // harness's timeout instead of leaving the test hanging.
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .and_then(|()| socket.listen(1))
            .and_then(|()| socket.set_read_timeout(Some(timeout())))
            .expect("the relay listens");
        let socket = TcpListener::from(socket);
        let address = socket
            .local_addr()
            .expect("the relay's address")
            .to_string();
        let listener = listener.to_owned();
        let (mut to_listener, mut to_client) = (fault.client_editor(), fault.listener_editor());
        let pumping = thread::spawn(move || {
            let (client, _) = socket
                .accept()
                .unwrap_or_else(|e| panic!("the client never connected to the relay: {e}"));
            client
                .set_read_timeout(None)
                .expect("a blocking client socket");
            let upstream = connect_from_an_address_of_its_own(&listener);
            let upstream_address = upstream.local_addr().expect("the relay's upstream address");
            let (client_in, upstream_out) = (
                client.try_clone().expect("clone"),
                upstream.try_clone().expect("clone"),
            );
            let backwards = thread::spawn(move || pump(upstream, client, &mut to_client));
            let from_client = pump(client_in, upstream_out, &mut to_listener);
            Relayed {
                upstream: upstream_address,
                from_client,
                from_listener: backwards.join().expect("the relay's backward pump"),
            }
        });
        Relay { address, pumping }
    }

    /// Waits for both directions to end.
    fn finish(self) -> Relayed {
        self.pumping.join().expect("the relay")
    }
}

/// Connects to `listener` from a loopback address no other relay of this
/// test process uses (127.1.0.1, 127.1.0.2, ...), so that the listener's
/// log names each relayed connection unmistakably: ports alone are reused
/// once a connection has closed.
fn connect_from_an_address_of_its_own(listener: &str) -> TcpStream {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 1)) + n);
    let listener: SocketAddr = listener.parse().expect("the listener's IP:PORT");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .and_then(|()| socket.connect(&listener.into()))
        .unwrap_or_else(|e| panic!("the relay cannot connect from {source} to {listener}: {e}"));
    socket.into()
}

/// Copies `from` to `to` unit by unit (a 4-byte big-endian length and that
/// many bytes: a frame or a record), each unit through `edit` (what it
/// returns is written at once), and returns the units as they came. When
/// `to` breaks (or `edit` ends it), the rest of `from` is read and dropped, so that its writer is never left blocked; when `from` ends,
/// `to` is shut for writing.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    edit: &mut dyn FnMut(usize, Vec<u8>) -> Forward,
) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    let mut pending = Vec::new();
    let mut chunk = vec![0; 1 << 16];
    let mut broken = false;
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(unit) = take_unit(&mut pending) {
            units.push(unit.clone());
            let out = edit(units.len() - 1, unit);
            broken = broken || to.write_all(&out.bytes).is_err();
            if out.end && !broken {
                let _ = to.shutdown(Shutdown::Write);
                broken = true;
            }
        }
    }
    if !pending.is_empty() {
        // A unit cut short: it passes as it came.
        let _ = to.write_all(&pending);
        units.push(pending);
    }
    let _ = to.shutdown(Shutdown::Write);
    units
}

/// Takes the first whole unit off `pending`, if it has one.
fn take_unit(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let header: [u8; RECORD_HEADER_LEN] = pending.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
    let len = RECORD_HEADER_LEN + u32::from_be_bytes(header) as usize;
    (pending.len() >= len).then(|| pending.drain(..len).collect())
}

/// Relayed connections run at once: enough to keep both cores busy with
/// the clients, the listener and the relays.
const WORKERS: usize = 3;

/// The `i`th test flower, as `--flower` takes it, and its area:
/// `4.00 + i/100, 3, 1, 0.5, setosa`, so that the flowers of every
/// connection print an area of their own.
fn flower(i: usize) -> (String, f64) {
    let sepal_length = (400 + i) as f64 / 100.0;
    (
        format!("{sepal_length},3,1,0.5,setosa"),
        sepal_length * 3.0 + 1.0 * 0.5,
    )
}

/// One connection through a relay.
struct Run {
    /// Which test flower its client sent.
    flower: usize,
    fault: Fault,
    client: Finished,
    relayed: Relayed,
}

/// Sends `FLOWERS_PER_SEND` copies of flower `i` through a relay with
/// `fault`.
fn send_through(listener: &str, i: usize, fault: Fault) -> Run {
    send_through_with(listener, i, fault, &[])
}

/// [`send_through`], the client given `flags` too.
fn send_through_with(listener: &str, i: usize, fault: Fault, flags: &[&str]) -> Run {
    let relay = Relay::start(listener, &fault);
    let (flower_arg, _) = flower(i);
    let repeat = FLOWERS_PER_SEND.to_string();
    let mut args = client_args(
        "send",
        &relay.address,
        &["--flower", &flower_arg, "--repeat", &repeat],
    );
    args.extend_from_slice(flags);
    let client = run_client(&args, &[KEY_ENV]);
    Run {
        flower: i,
        fault,
        client,
        relayed: relay.finish(),
    }
}

/// Runs each fault on a connection of its own, `WORKERS` at a time, the
/// `n`th with flower `first_flower + n`.
fn send_all_through(listener: &str, first_flower: usize, faults: Vec<Fault>) -> Vec<Run> {
    let queue = Mutex::new(faults.into_iter().enumerate());
    let runs = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("the queue").next();
                    let Some((n, fault)) = next else { break };
                    let run = send_through(listener, first_flower + n, fault);
                    runs.lock().expect("the runs").push(run);
                }
            });
        }
    });
    let mut runs = runs.into_inner().expect("the runs");
    runs.sort_by_key(|run| run.flower);
    runs
}

/// The listener's log line for the end of a relayed connection (`closed`
/// or `dropped`), once it has logged it; panics unless the connection
/// authenticated sealed.
fn ending(listener: &ListenerProcess, relayed: &Relayed) -> String {
    let authenticated = listener
        .wait_for_log(&format!(" from {} authenticated", relayed.upstream), 1)
        .remove(0);
    assert!(
        authenticated.ends_with("authenticated, sealed"),
        "{authenticated}"
    );
    let id = connection_id(&authenticated);
    listener
        .wait_for_log(&format!("connection {id} "), 2)
        .into_iter()
        .find(|line| !line.contains(" authenticated"))
        .expect("the connection's last line")
}

/// The listener's log line for a relayed connection's failed handshake.
fn rejection(listener: &ListenerProcess, relayed: &Relayed) -> String {
    listener
        .wait_for_log(&format!(" from {} rejected", relayed.upstream), 1)
        .remove(0)
}

/// The `N` of a `connection N ...` log line.
fn connection_id(line: &str) -> u64 {
    line.split_once("connection ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no connection id in {line:?}"))
}

/// How a tampered connection must end: how many of its data records the
/// listener opened before the one that failed, and the log's reason.
struct Expected {
    opened: usize,
    reason: String,
}

impl Expected {
    /// Record `k` fails authentication; the records before it opened.
    fn fails_at(k: usize) -> Expected {
        Expected {
            opened: k - 1,
            reason: format!("sealed record {k} failed authentication"),
        }
    }

    /// The stream ends inside record `k`, after `keep` of its bytes; or,
    /// with `keep` 0, between records, where the frames inside tell: the
    /// flower protocol's `Close` is missing, or a frame is cut.
    fn cut_inside(k: usize, keep: usize, data: &[Vec<u8>]) -> Expected {
        let reason = match keep {
            0 if k == 1 => WITHOUT_CLOSE.to_owned(),
            0 => "the peer closed the connection in the middle of a frame".to_owned(),
            _ => format!(
                "the connection ended inside a sealed record ({keep} bytes of it had arrived)"
            ),
        };
        assert!(keep < data[k - 1].len(), "a cut inside record {k}");
        Expected {
            opened: k - 1,
            reason,
        }
    }

    /// What a flip of `mask` at `offset` of `data` (the client's data
    /// records, headers included) does: the record it hits fails, or, for a
    /// header that now states a length no peer seals, is refused unread.
    fn of_flip(data: &[Vec<u8>], offset: usize, mask: u8) -> Expected {
        let mut start = 0;
        for (index, record) in data.iter().enumerate() {
            let at = offset - start;
            if at < record.len() {
                let mut header = [0; RECORD_HEADER_LEN];
                header.copy_from_slice(&record[..RECORD_HEADER_LEN]);
                if at < RECORD_HEADER_LEN {
                    header[at] ^= mask;
                    let stated = u32::from_be_bytes(header) as usize;
                    if !(TAG_LEN..=MAX_RECORD_PLAINTEXT + TAG_LEN).contains(&stated) {
                        return Expected {
                            opened: index,
                            reason: format!("a sealed record states a length of {stated} bytes"),
                        };
                    }
                }
                return Expected::fails_at(index + 1);
            }
            start += record.len();
        }
        panic!("offset {offset} is past the data records");
    }

    /// The flowers of the records opened: the whole frames in their
    /// plaintext (the client sends nothing but flower frames before
    /// `Close`).
    fn flowers(&self, run: &Run) -> usize {
        run.relayed.data_plaintext()[..self.opened]
            .iter()
            .sum::<usize>()
            / FLOWER_FRAME
    }
}

/// Checks that a tampered connection failed cleanly: the client reports
/// that nothing was acknowledged, and the listener logs the reason and how
/// many flowers it printed, none of them from the tampered record or after
/// it. Returns that number.
fn assert_failed_cleanly(listener: &ListenerProcess, run: &Run, expected: &Expected) -> usize {
    let context = format!("flower {} with {:?}", run.flower, run.fault);
    run.client.assert_code(5);
    assert!(
        run.client
            .stderr_text()
            .contains("broke before the listener acknowledged"),
        "{context}: {}",
        run.client.describe()
    );
    let ending = ending(listener, &run.relayed);
    let (flowers, reason) = ending_of_a_broken_session(&ending)
        .unwrap_or_else(|| panic!("{context}: the connection was not dropped: {ending}"));
    assert!(
        reason.starts_with(&expected.reason),
        "{context}: {:?} in {ending}",
        expected.reason
    );
    // Exactly the flowers of the records before the tampered one: all of
    // them, and nothing of it (see
    // `authentic_records_before_a_tampered_one_are_all_printed`).
    let before = expected.flowers(run);
    assert!(
        flowers == before,
        "{context}: {flowers} flowers printed, but only {before} came before the tampered record"
    );
    flowers
}

/// The flowers printed and the reason of a session's end that is not a
/// `Close`: `dropped after F flowers: REASON`, or `closed by the client
/// without Close: F flowers`.
fn ending_of_a_broken_session(line: &str) -> Option<(usize, &str)> {
    if let Some((_, rest)) = line.split_once(" dropped after ") {
        let (flowers, reason) = rest.split_once(" flowers: ")?;
        return Some((flowers.parse().ok()?, reason));
    }
    let (_, rest) = line.split_once(" closed by the client without Close: ")?;
    let flowers = rest.strip_suffix(" flowers")?.parse().ok()?;
    Some((flowers, WITHOUT_CLOSE))
}

/// The reason given for a connection that ends between records.
const WITHOUT_CLOSE: &str = "closed by the client without Close";

/// The client's layout must be what the expectations assume: a sealed
/// `#WELCOME#`, then `FLOWERS_PER_SEND` flower frames and `Close` in at
/// least five data records.
fn assert_layout(run: &Run) {
    let records = run.relayed.client_records();
    assert_eq!(
        records[0].len(),
        RECORD_HEADER_LEN + SHORT_HEADER_LEN + WELCOME.len() + TAG_LEN,
        "record 0 is the sealed #WELCOME#"
    );
    let plaintext = run.relayed.data_plaintext();
    assert_eq!(
        plaintext.iter().sum::<usize>(),
        FLOWERS_PER_SEND as usize * FLOWER_FRAME + CLOSE_FRAME,
        "{plaintext:?}"
    );
    assert!(plaintext.len() >= 5, "{plaintext:?}");
}

/// A clean client, straight to the listener, is served after all that.
fn assert_still_serving(listener: &ListenerProcess, i: usize) {
    let (flower_arg, _) = flower(i);
    run_client(
        &client_args("send", listener.address(), &["--flower", &flower_arg]),
        &[KEY_ENV],
    )
    .assert_all_acknowledged(1);
}

/// Stops the listener and checks what it printed: for each test flower,
/// exactly `printed[flower]` `Area:` lines of its area, and nothing else;
/// returns the summary.
fn assert_printed(listener: ListenerProcess, printed: &BTreeMap<usize, usize>) -> Summary {
    let finished = listener.stop();
    finished.assert_code(0);
    let mut by_area: BTreeMap<u64, usize> = BTreeMap::new();
    for line in finished.area_lines() {
        *by_area.entry(area_of(line).to_bits()).or_default() += 1;
    }
    for (&i, &count) in printed {
        let (_, area) = flower(i);
        let found = by_area.remove(&area.to_bits()).unwrap_or(0);
        assert_eq!(found, count, "`Area: {area}` lines of flower {i}");
    }
    assert!(by_area.is_empty(), "lines of no flower sent: {by_area:?}");
    let summary = finished.summary();
    assert_eq!(
        summary.get("flowers"),
        printed.values().sum::<usize>() as u64,
        "{}",
        summary.line
    );
    summary
}

/// Panics unless the listener's summary has each `key=value`.
fn assert_counts(summary: &Summary, counts: &[(&str, u64)]) {
    for &(key, value) in counts {
        assert_eq!(summary.get(key), value, "{key}= in {}", summary.line);
    }
}

/// The clean session that the faults are measured against: its layout, and
/// its records to replay.
fn probe(listener: &ListenerProcess, i: usize) -> Run {
    let run = send_through(listener.address(), i, Fault::None);
    run.client
        .assert_all_acknowledged(FLOWERS_PER_SEND)
        .assert_code(0);
    assert_layout(&run);
    let ending = ending(listener, &run.relayed);
    assert!(
        ending.ends_with(&format!("closed: {FLOWERS_PER_SEND} flowers")),
        "{ending}"
    );
    run
}

/// The bytes of the first `records` data records that the flips hit: every
/// header byte, the first 16 bytes of each body and every tag byte, and as
/// many more spread evenly over them as make `count`.
fn flip_offsets(data: &[Vec<u8>], records: usize, count: usize) -> BTreeSet<usize> {
    let mut offsets = BTreeSet::new();
    let mut start = 0;
    for record in &data[..records] {
        let body = start + RECORD_HEADER_LEN;
        let end = start + record.len();
        offsets.extend(start..body + 16);
        offsets.extend(end - TAG_LEN..end);
        start = end;
    }
    let span = start;
    let mut step = 0;
    while offsets.len() < count && step < count {
        offsets.insert(step * span / count);
        step += 1;
    }
    assert_eq!(offsets.len(), count, "{count} places in {span} bytes");
    offsets
}

#[test]
fn a_flipped_byte_at_any_of_300_places_ends_only_its_connection() {
    const FLIPS: usize = 300;
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let probe = probe(&listener, 0);
    let data = &probe.relayed.client_records()[1..];
    let faults: Vec<Fault> = flip_offsets(data, 3, FLIPS)
        .into_iter()
        .enumerate()
        .map(|(n, offset)| Fault::Flip {
            offset,
            mask: 1 << (n % 8),
        })
        .collect();
    assert_eq!(faults.len(), FLIPS);

    let mut printed = BTreeMap::from([(0, FLOWERS_PER_SEND as usize)]);
    let mut refused_lengths = 0;
    for run in send_all_through(listener.address(), 1, faults) {
        assert_layout(&run);
        let Fault::Flip { offset, mask } = run.fault else {
            unreachable!("only flips here")
        };
        let expected = Expected::of_flip(&run.relayed.client_records()[1..], offset, mask);
        refused_lengths += usize::from(expected.reason.contains("states a length"));
        printed.insert(
            run.flower,
            assert_failed_cleanly(&listener, &run, &expected),
        );
    }
    // Headers whose flipped length is out of bounds are refused unread; the
    // others, like every body and tag byte, fail authentication.
    let header_bytes = 3 * RECORD_HEADER_LEN;
    assert!(
        (1..=header_bytes).contains(&refused_lengths),
        "{refused_lengths} lengths refused, of {header_bytes} header bytes flipped"
    );
    assert_still_serving(&listener, FLIPS + 1);
    printed.insert(FLIPS + 1, 1);

    let summary = assert_printed(listener, &printed);
    let connections = FLIPS as u64 + 2;
    assert_counts(
        &summary,
        &[
            ("connections", connections),
            ("sealed", connections),
            ("unsealed", 0),
            ("rejected", 0),
        ],
    );
}

#[test]
fn dropped_duplicated_reordered_replayed_and_cut_records_end_only_their_connection() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    // Session A, whose records are replayed into later sessions at the
    // same places: same lengths, same record numbers, other keys.
    let earlier = probe(&listener, 0);
    let replayed = earlier.relayed.client_records();
    let cases = [
        (Fault::Drop(1), Expected::fails_at(1)),
        (Fault::Drop(2), Expected::fails_at(2)),
        (Fault::Drop(3), Expected::fails_at(3)),
        (Fault::Duplicate(1), Expected::fails_at(2)),
        (Fault::Duplicate(2), Expected::fails_at(3)),
        (Fault::Duplicate(4), Expected::fails_at(5)),
        (Fault::Swap(1), Expected::fails_at(1)),
        (Fault::Swap(2), Expected::fails_at(2)),
        (Fault::Swap(3), Expected::fails_at(3)),
        (
            Fault::Replace(1, replayed[1].clone()),
            Expected::fails_at(1),
        ),
        (
            Fault::Replace(2, replayed[2].clone()),
            Expected::fails_at(2),
        ),
        (
            Fault::Replace(3, replayed[3].clone()),
            Expected::fails_at(3),
        ),
    ];
    let data = &replayed[1..];
    let cuts = [
        (1, 0),
        (2, 0),
        (1, 2),
        (1, 100),
        (3, data[2].len() - 1),
        (5, 30),
    ];
    let cases: Vec<(Fault, Expected)> = cases
        .into_iter()
        .chain(cuts.into_iter().map(|(record, keep)| {
            (
                Fault::Cut { record, keep },
                Expected::cut_inside(record, keep, data),
            )
        }))
        .collect();
    let faults = cases.iter().map(|(fault, _)| fault.clone()).collect();
    let runs = send_all_through(listener.address(), 1, faults);
    let mut printed = BTreeMap::from([(0, FLOWERS_PER_SEND as usize)]);
    for (run, (_, expected)) in runs.iter().zip(&cases) {
        assert_layout(run);
        printed.insert(run.flower, assert_failed_cleanly(&listener, run, expected));
    }

    // Session A's sealed #WELCOME# in place of a later session's: the keys
    // do not match, so that session never authenticates.
    let flower = cases.len() + 1;
    let run = send_through(
        listener.address(),
        flower,
        Fault::Replace(0, replayed[0].clone()),
    );
    printed.insert(flower, 0);
    let rejected = rejection(&listener, &run.relayed);
    assert!(
        rejected.contains("the client's first sealed record did not open"),
        "{rejected}"
    );
    // The client learns it only as a connection closed before its
    // acknowledgement: key confirmation has no answer.
    run.client.assert_code(5);

    assert_still_serving(&listener, flower + 1);
    printed.insert(flower + 1, 1);
    let summary = assert_printed(listener, &printed);
    let connections = cases.len() as u64 + 2;
    assert_counts(
        &summary,
        &[
            ("connections", connections),
            ("sealed", connections),
            ("unsealed", 0),
            ("rejected", 1),
        ],
    );
}

/// Found by this suite (and fixed in iris-wire's `Sealed::open_into`): when
/// the record after an authentic one failed, the authentic record's frames
/// that were already opened into the frame decoder but not yet handed to the
/// caller were dropped: the error of record `k` came before the frames of
/// record `k - 1`, and the listener printed fewer flowers than the client
/// sent in authentic records (in the flip test, about one connection in
/// eight, depending on whether record `k` arrived in the same read). A
/// failed record now ends the connection only after the frames opened
/// before it (the opener keeps its error for the next call).
#[test]
fn authentic_records_before_a_tampered_one_are_all_printed() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let faults = vec![Fault::FlipAfterHeld(2), Fault::FlipAfterHeld(3)];
    let mut printed = BTreeMap::new();
    for run in send_all_through(listener.address(), 0, faults) {
        assert_layout(&run);
        let Fault::FlipAfterHeld(k) = run.fault else {
            unreachable!("only these here")
        };
        let expected = Expected::fails_at(k);
        let flowers = assert_failed_cleanly(&listener, &run, &expected);
        assert_eq!(
            flowers,
            expected.flowers(&run),
            "the flowers of the authentic records before record {k}"
        );
        printed.insert(run.flower, flowers);
    }
    assert_printed(listener, &printed);
}

#[test]
fn stripping_or_altering_either_seal_mark_fails_the_handshake() {
    let tag = 0;
    let role = LISTENER_SEAL_MARK.len() - 1;
    let key_first = LISTENER_SEAL_MARK.len();
    let key_last = MARK_LEN - 1;
    for side in [Side::Listener, Side::Client] {
        // One listener per side: its log shows five failed handshakes in a
        // row before it folds them into one line.
        let listener = ListenerProcess::start(&[], &[KEY_ENV]);
        let faults = [
            Fault::StripMark(side),
            Fault::AlterMark(side, tag),
            Fault::AlterMark(side, role),
            Fault::AlterMark(side, key_first),
            Fault::AlterMark(side, key_last),
        ];
        for (i, fault) in faults.into_iter().enumerate() {
            let run = send_through(listener.address(), i, fault);
            assert_refused(
                &listener,
                &run,
                4,
                "could not authenticate: authentication failed",
                "rejected: authentication failed: the peer",
            );
        }
        assert_still_serving(&listener, 10);
        let summary = assert_printed(listener, &BTreeMap::from([(10, 1)]));
        assert_counts(
            &summary,
            &[("rejected", 5), ("connections", 1), ("sealed", 1)],
        );
    }
}

/// Every distinct measurement of the data set.
fn measurements() -> Vec<f64> {
    let text = std::fs::read_to_string(iris_csv()).expect("the data set");
    let values: BTreeSet<u64> = text
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .flat_map(|line| line.split(',').take(4))
        .map(|field| field.parse::<f64>().expect("a measurement").to_bits())
        .collect();
    assert!(values.len() > 30, "{} distinct measurements", values.len());
    values.into_iter().map(f64::from_bits).collect()
}

const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Sends the data set through a relay that only listens; returns all it
/// read, both ways.
fn capture(listener_flags: &[&str], client_flags: &[&str], sealed: bool) -> Vec<u8> {
    let listener = ListenerProcess::start(listener_flags, &[KEY_ENV]);
    let relay = Relay::start(listener.address(), &Fault::None);
    let csv = iris_csv();
    let mut args = client_args("send", &relay.address, &[csv.to_str().expect("UTF-8 path")]);
    args.extend_from_slice(client_flags);
    // Pickles get no acknowledgement: the listener's lines tell.
    run_client(&args, &[KEY_ENV]).assert_code(0);
    let relayed = relay.finish();
    let authenticated = listener
        .wait_for_log(&format!(" from {} authenticated", relayed.upstream), 1)
        .remove(0);
    let kind = if sealed { ", sealed" } else { ", unsealed" };
    assert!(authenticated.contains(kind), "{authenticated}");
    let finished = listener.stop();
    assert_eq!(finished.area_lines().len(), 150, "{}", finished.describe());
    relayed.capture()
}

/// The native codec writes a measurement as the 8 bytes of an `f64`
/// little-endian (postcard), a pickle big-endian (`BINFLOAT`): a capture
/// holds none of them either way round, nor a species' name.
#[test]
fn a_passive_capture_of_a_sealed_session_holds_none_of_the_flowers() {
    let measurements = measurements();
    let holds = |capture: &[u8], bytes: fn(f64) -> [u8; 8]| {
        measurements
            .iter()
            .filter(|&&m| contains(capture, &bytes(m)))
            .count()
    };
    for codec in [&[][..], &["--codec", "pickle"]] {
        let sealed = capture(&[], codec, true);
        for (order, bytes) in [
            ("LE", f64::to_le_bytes as fn(f64) -> [u8; 8]),
            ("BE", f64::to_be_bytes),
        ] {
            assert_eq!(
                holds(&sealed, bytes),
                0,
                "sealed {codec:?}: {order} measurements"
            );
        }
        for species in SPECIES {
            assert!(
                !contains(&sealed, species.as_bytes()),
                "sealed {codec:?}: {species}"
            );
        }

        // The contrast: the same capture unsealed shows every measurement,
        // and pickles show the species by name.
        let mut flags = vec!["--no-sealing"];
        flags.extend_from_slice(codec);
        let unsealed = capture(&["--no-sealing"], &flags, false);
        if codec.is_empty() {
            assert_eq!(
                holds(&unsealed, f64::to_le_bytes),
                measurements.len(),
                "native"
            );
        } else {
            assert_eq!(
                holds(&unsealed, f64::to_be_bytes),
                measurements.len(),
                "pickle"
            );
            for species in SPECIES {
                assert!(contains(&unsealed, species.as_bytes()), "pickle: {species}");
            }
        }
    }
}

#[test]
fn cpython_peers_are_served_unsealed_and_refused_when_sealing_is_required() {
    let test = "cpython_peers_are_served_unsealed_and_refused_when_sealing_is_required";
    // 3.11 would need legacy MD5 as well; 3.12 and 3.13 speak SHA-256.
    for python in pythons(test)
        .into_iter()
        .filter(|python| !python.is_legacy())
    {
        let context = format!("CPython {}", python.version);

        // The seed's client code, unchanged: served, unsealed, and logged so.
        let listener = ListenerProcess::start(&[], &[KEY_ENV]);
        looped_seed_client(&python, port_of(listener.address()))
            .finish()
            .assert_code(0);
        let authenticated = listener.wait_for_log(" authenticated", 1).remove(0);
        assert!(
            authenticated.contains("authenticated, unsealed: a CPython peer"),
            "{context}: {authenticated}"
        );
        let finished = listener.stop();
        assert_eq!(finished.area_lines().len(), 150, "{context}");
        let summary = finished.summary();
        assert_counts(&summary, &[("sealed", 0), ("unsealed", 1)]);

        // A listener that requires sealing refuses it, says why, prints nothing.
        let listener = ListenerProcess::start(&["--require-sealed"], &[KEY_ENV]);
        let client = looped_seed_client(&python, port_of(listener.address())).finish();
        assert_ne!(client.code(), Some(0), "{context}: {}", client.describe());
        let rejected = listener.wait_for_log(" rejected", 1).remove(0);
        assert!(
            rejected.contains("sealing is required here, and the peer cannot seal"),
            "{context}: {rejected}"
        );
        assert_still_serving(&listener, 0);
        let summary = assert_printed(listener, &BTreeMap::from([(0, 1)]));
        assert_counts(&summary, &[("rejected", 1), ("sealed", 1), ("unsealed", 0)]);

        // A client that requires sealing refuses a CPython listener: exit 9,
        // and the message says it is about sealing. Nothing is sent.
        let (python_listener, port) = looped_seed_listener(&python);
        let csv = iris_csv();
        let address = format!("127.0.0.1:{port}");
        let client = run_client(
            &client_args(
                "send",
                &address,
                &[csv.to_str().expect("UTF-8 path"), "--require-sealed"],
            ),
            &[KEY_ENV],
        );
        client.assert_code(9);
        let message = client.stderr_text();
        assert!(
            message.contains("sealing is required here, and the peer cannot seal"),
            "{context}: {message}"
        );
        let python_listener = python_listener.finish();
        assert!(
            python_listener.stdout.is_empty(),
            "{context}: {}",
            python_listener.describe()
        );
    }
}

/// Checks that a relayed handshake failed: the client exited with `code`,
/// nothing acknowledged, its message saying `client_says`, and the listener
/// logged the connection as rejected, saying `listener_says`.
fn assert_refused(
    listener: &ListenerProcess,
    run: &Run,
    code: i32,
    client_says: &str,
    listener_says: &str,
) {
    let context = format!("{:?}", run.fault);
    run.client.assert_code(code);
    assert_eq!(
        run.client.acknowledged(),
        0,
        "{context}: {}",
        run.client.describe()
    );
    let message = run.client.stderr_text();
    assert!(
        message.contains(client_says),
        "{context}: {client_says:?} in {message}"
    );
    let rejected = rejection(listener, &run.relayed);
    assert!(
        rejected.contains(listener_says),
        "{context}: {listener_says:?} in {rejected}"
    );
}

/// A client that requires sealing sends its challenge first (fast open),
/// and a listener that requires sealing refuses a client without the mark:
/// a man in the middle who strips a mark cannot downgrade either to an
/// unsealed session, and what he changes after a fast open fails as after
/// any handshake.
#[test]
fn a_side_that_requires_sealing_cannot_be_downgraded() {
    const REQUIRE: &[&str] = &["--require-sealed"];
    let key = LISTENER_SEAL_MARK.len();
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let fast_open = |i, fault| send_through_with(listener.address(), i, fault, REQUIRE);
    // The client refuses a listener whose mark is gone, as it refuses CPython.
    let run = fast_open(0, Fault::StripMark(Side::Listener));
    assert_refused(&listener, &run, 9, "the peer cannot seal", "rejected: ");
    // The client has sent its data, sealed, before it learns that its answer
    // was refused: nothing of it is printed, and the client says why.
    let run = fast_open(1, Fault::AlterMark(Side::Listener, key));
    assert_refused(
        &listener,
        &run,
        5,
        "authentication failed: the peer rejected our digest",
        "the peer's digest is wrong",
    );
    let run = fast_open(2, Fault::StripMark(Side::Client));
    assert_refused(
        &listener,
        &run,
        4,
        "could not authenticate",
        "a client sent its challenge first without the sealing mark",
    );
    let run = fast_open(3, Fault::AlterMark(Side::Client, key));
    assert_refused(
        &listener,
        &run,
        4,
        "the peer's digest is wrong",
        "the peer rejected our digest",
    );
    let mut printed = BTreeMap::from_iter((0..4).map(|i| (i, 0)));
    for (i, fault, expected) in [
        (4, Fault::Drop(1), Expected::fails_at(1)),
        (5, Fault::Swap(1), Expected::fails_at(1)),
        (
            6,
            Fault::Flip {
                offset: 100,
                mask: 0x10,
            },
            Expected::fails_at(1),
        ),
    ] {
        let run = fast_open(i, fault);
        assert_layout(&run);
        printed.insert(i, assert_failed_cleanly(&listener, &run, &expected));
    }
    assert_still_serving(&listener, 7);
    printed.insert(7, 1);
    let summary = assert_printed(listener, &printed);
    assert_counts(
        &summary,
        &[("rejected", 4), ("connections", 4), ("sealed", 4)],
    );

    // The listener refuses a client whose mark is gone, as it refuses CPython.
    let listener = ListenerProcess::start(REQUIRE, &[KEY_ENV]);
    let run = send_through(listener.address(), 0, Fault::StripMark(Side::Client));
    assert_refused(
        &listener,
        &run,
        4,
        "could not authenticate",
        "the peer cannot seal",
    );
    let run = send_through(listener.address(), 1, Fault::StripMark(Side::Listener));
    assert_refused(
        &listener,
        &run,
        4,
        "the peer rejected our digest",
        "the peer's digest is wrong",
    );
    assert_still_serving(&listener, 2);
    let summary = assert_printed(listener, &BTreeMap::from([(0, 0), (1, 0), (2, 1)]));
    assert_counts(
        &summary,
        &[("rejected", 2), ("connections", 1), ("sealed", 1)],
    );
}
