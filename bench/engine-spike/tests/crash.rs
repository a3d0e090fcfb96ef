//! The fjall path keeps every acknowledged write through a kill -9: a child process writes
//! with group commit and prints each write as it is acknowledged; it is killed (SIGKILL) while
//! it writes, and the reopened store must hold every write it printed, with its chain head at
//! least that far. Also: an idempotency key already stored (or claimed earlier in the same
//! batch) writes nothing, on fjall and on both SQLite layouts.

use rxbridge_engine_spike::data::{Gen, idem_pk, rx_pk};
use rxbridge_engine_spike::lsm::Fjall;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Acknowledgements to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 3_000;

fn read_acks(r: &mut impl BufRead, acks: &mut Vec<(String, String)>, until: Option<usize>) {
    let mut line = Vec::new();
    loop {
        if until.is_some_and(|n| acks.len() >= n) {
            return;
        }
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            // A line cut short by the kill has no newline: that write was not reported.
            Ok(_) if !line.ends_with(b"\n") => return,
            Ok(_) => {
                let s = String::from_utf8_lossy(&line);
                let rest = s.trim_end().strip_prefix("ack ").expect("an ack line");
                let (idem, rx) = rest.split_once('\t').expect("two keys");
                acks.push((idem.to_string(), rx.to_string()));
            }
        }
    }
}

/// Kills the child if the test fails before it does (it would write for an hour).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn acknowledged_writes_survive_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rxbridge-engine-spike"))
        .arg("crash-child")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut acks = Vec::new();
    read_acks(&mut out, &mut acks, Some(ACKS_BEFORE_KILL));
    assert_eq!(acks.len(), ACKS_BEFORE_KILL, "the child stopped early");
    // SIGKILL: no destructor, no flush, no clean shutdown.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    // Acknowledgements printed before the kill are still in the pipe.
    read_acks(&mut out, &mut acks, None);

    let store = Fjall::open(dir.path(), false).unwrap();
    let mut missing = Vec::new();
    for (idem, rx) in &acks {
        let idem_ok = store.get(idem, "IDEM").unwrap().is_some();
        let rx_ok = store
            .get(rx, "RX")
            .unwrap()
            .is_some_and(|v| v.len() > rxbridge_engine_spike::data::SEALED_BYTES);
        if !(idem_ok && rx_ok) {
            missing.push(rx.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        acks.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        store.head().seq >= acks.len() as i64,
        "chain head {} behind {} acknowledged writes",
        store.head().seq,
        acks.len()
    );
}

fn a_taken_key_writes_nothing(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gen::new(3, 0);
    let (a, b) = (g.next_rx(), g.next_rx());
    let mut again = a.clone();
    again.id = "rx_another".into();
    let mut e = rxbridge_engine_spike::open(engine, dir.path(), false).unwrap();
    assert_eq!(e.commit(&[&a], true).unwrap(), [true]);
    // The stored key refused; in one batch, the second claim of a key refused.
    let mut twice = b.clone();
    twice.id = "rx_twice".into();
    assert_eq!(
        e.commit(&[&again, &b, &twice], true).unwrap(),
        [false, true, false],
        "{engine}"
    );
    e.close().unwrap();
    if engine == "fjall" {
        let s = Fjall::open(dir.path(), false).unwrap();
        assert!(s.get(&rx_pk(&a), "RX").unwrap().is_some());
        assert!(s.get(&idem_pk(&b), "IDEM").unwrap().is_some());
        assert!(s.get("RX#rx_another", "RX").unwrap().is_none());
        assert!(s.get("RX#rx_twice", "RX").unwrap().is_none());
        assert_eq!(s.head().seq, 2, "two events");
    } else {
        let c = rusqlite::Connection::open(dir.path().join("spike.db")).unwrap();
        let q = if engine == "sqlite-product" {
            "SELECT (SELECT count(*) FROM prescriptions), (SELECT count(*) FROM events)"
        } else {
            "SELECT (SELECT count(*) FROM items WHERE pk LIKE 'RX#%'), (SELECT count(*) FROM items WHERE pk = 'EVT')"
        };
        let n: (i64, i64) = c.query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(n, (2, 2), "{engine}: two prescriptions, two events");
    }
}

#[test]
fn a_taken_idempotency_key_writes_nothing_on_every_engine() {
    for engine in ["fjall", "sqlite-product", "sqlite-items"] {
        a_taken_key_writes_nothing(engine);
    }
}
