//! Seqlock snapshot: concurrent readers never observe a torn value.

use hotpath::ring::{Plain, Snapshot};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Eight words that the writer always sets to the same number: any mix of two publications
/// is visible as unequal words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Wide {
    words: [u64; 8],
    tag: u32,
    check: u32,
}
const _: () = assert!(core::mem::size_of::<Wide>() == 8 * 8 + 4 + 4);
// SAFETY: repr(C), a [u64; 8] then two u32: no padding (size asserted above).
unsafe impl Plain for Wide {}

fn wide(n: u64) -> Wide {
    let tag = u32::try_from(n % u64::from(u32::MAX)).unwrap();
    Wide { words: [n; 8], tag, check: !tag }
}

#[test]
fn concurrent_readers_never_see_a_torn_value() {
    const PUBLICATIONS: u64 = 200_000;
    let (mut writer, reader) = Snapshot::new(wide(0));
    let done = Arc::new(AtomicBool::new(false));
    // One reader thread plus the writer (this thread): never more threads than 2 cores.
    let reader_thread = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut last_version = 0;
            let mut last_value = 0;
            while !done.load(Ordering::Acquire) {
                let (version, v) = reader.read_versioned();
                assert!(v.words.iter().all(|w| *w == v.words[0]), "torn read: {v:?}");
                assert_eq!(v.check, !v.tag, "torn read: {v:?}");
                assert_eq!(u64::from(v.tag), v.words[0] % u64::from(u32::MAX));
                assert!(version >= last_version, "version went back");
                assert!(v.words[0] >= last_value, "value went back");
                assert_eq!(version, v.words[0] + 1, "version matches publication count");
                last_version = version;
                last_value = v.words[0];
                reads += 1;
            }
            reads
        })
    };
    for n in 1..=PUBLICATIONS {
        writer.publish(wide(n));
    }
    done.store(true, Ordering::Release);
    let reads = reader_thread.join().expect("reader panicked");
    assert!(reads > 0);
    assert_eq!(writer.version(), PUBLICATIONS + 1);
    assert_eq!(writer.reader().read(), wide(PUBLICATIONS));
}
