//! loom model of `hotpath::ring::Snapshot` (the seqlock): a reader racing a writer never
//! accepts a torn value, and what it accepts is a real publication with its version.
#![cfg(loom)]

use hotpath::ring::Snapshot;
use loom::thread;

/// 12 bytes = two words, the second one partial: exercises the byte/word conversion too.
type Value = [u32; 3];

fn is_whole(v: Value) -> bool {
    v[0] == v[1] && v[1] == v[2]
}

#[test]
fn try_read_never_accepts_a_torn_value() {
    loom::model(|| {
        let (mut writer, reader) = Snapshot::<Value>::new([0; 3]);
        let racing = thread::spawn(move || {
            if let Some((version, v)) = reader.try_read() {
                assert!(is_whole(v), "torn read {v:?}");
                assert_eq!(u64::from(v[0]) + 1, version, "version belongs to the value");
            }
        });
        writer.publish([1; 3]);
        writer.publish([2; 3]);
        racing.join().unwrap();
    });
}

#[test]
fn read_retries_to_a_whole_value_and_never_goes_back() {
    loom::model(|| {
        let (mut writer, reader) = Snapshot::<Value>::new([0; 3]);
        let racing = thread::spawn(move || {
            let (v1, a) = reader.read_versioned();
            let (v2, b) = reader.read_versioned();
            assert!(is_whole(a) && is_whole(b), "torn read {a:?} {b:?}");
            assert!(v2 >= v1 && b[0] >= a[0], "went back: {a:?} then {b:?}");
        });
        writer.publish([1; 3]);
        racing.join().unwrap();
        assert_eq!(writer.reader().read(), [1; 3]);
    });
}
