//! A SQLite VFS that writes each transaction's write-ahead-log frames with
//! one system call.
//!
//! SQLite appends a frame to the log as two writes, its 24-byte header and
//! then the page, so a commit of `n` pages costs `2n` `pwrite` calls (round
//! 6 of BENCHMARKS.md: 29 % of the store writer's time). This VFS wraps the
//! platform's default one and changes only the log files it opens: their
//! writes that continue where the previous one ended are gathered in memory
//! and reach the file in one write, when a commit frame is complete, before
//! any other operation on the file (read, sync, truncate, size, lock, file
//! control, close), at a jump to another offset, or before the buffer would pass
//! [`MAX_WRITE`] bytes. Every other file (the database, the shared-memory
//! index) is the default VFS's own, untouched.
//!
//! Why that keeps SQLite's guarantees: a transaction becomes visible to other
//! connections only when SQLite updates the log's index after writing its
//! last frame, the commit frame, which is flushed before that write returns;
//! nothing is synced before it is written, since a sync flushes first. A
//! write that fails when flushed fails the write that triggered the flush,
//! and with it the transaction. Frames of an unfinished transaction that a
//! crash leaves unwritten are frames the log's recovery would have discarded.

#[cfg(test)]
use std::ffi::CString;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

use super::vfs_shim;

/// The name connections open the store's database with.
pub const NAME: &str = "wasp-wal";

/// Most bytes held: SQLite's unix VFS writes at most 128 KiB − 1 bytes per
/// call (`seekAndWriteFd`), so a bigger transaction reaches the file in
/// writes of up to 124 KiB (30 frames of 4 KiB pages).
const MAX_WRITE: usize = 0x1ffff & !0xfff;

/// Size of a log frame header; bytes 4..8 hold the commit mark.
const FRAME_HEADER: usize = 24;

/// Size of the log file header.
const LOG_HEADER: i64 = 32;

/// Register the VFS (once per process); the store then opens its database
/// with [`NAME`].
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find is thread-safe; null names the default.
            let base = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
            install(base, NAME)
        })
        .clone()
}

/// Register this VFS as `name` over the VFS registered as `base` (once per
/// name): the crash tests put a recording VFS underneath.
#[cfg(test)]
pub fn register_over(base: &str, name: &'static str) -> Result<(), String> {
    static REGISTERED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut registered = REGISTERED.lock().expect("registry lock");
    if registered.contains(&name) {
        return Ok(());
    }
    let base = CString::new(base).map_err(|e| e.to_string())?;
    // SAFETY: sqlite3_vfs_find is thread-safe.
    install(unsafe { ffi::sqlite3_vfs_find(base.as_ptr()) }, name)?;
    registered.push(name);
    Ok(())
}

fn install(base: *mut ffi::sqlite3_vfs, name: &str) -> Result<(), String> {
    vfs_shim::register::<LogFile>(base, name, open)
}

/// The file SQLite allocates (`szOsFile` bytes): this header, then the
/// wrapped VFS's own file ([`vfs_shim`]). Non-log files are opened by
/// the default VFS in place at offset 0 and never look at the header.
#[repr(C)]
struct LogFile {
    base: ffi::sqlite3_file,
    pending: *mut Pending,
}

/// Log bytes written by SQLite but not yet by the file.
///
/// Only appends are held: bytes past everything written since the log last
/// restarted (SQLite rewrites the log header at offset 0 when it does).
/// Anything written below that point is a rewrite and goes through at once,
/// so the last write of a commit is always either the commit frame's page,
/// which flushes, or a rewrite, which flushes before it: a transaction's
/// bytes are all in the file before SQLite publishes it.
#[derive(Default)]
struct Pending {
    /// File offset of `bytes[0]`.
    start: i64,
    bytes: Vec<u8>,
    /// End of the furthest write of the current log generation.
    log_end: i64,
    /// The last write was a commit frame's header: flush after its page.
    commit_page_next: bool,
}

/// The wrapped VFS's file inside `file`.
///
/// # Safety
/// `file` was opened by [`open`] as a log file.
unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    unsafe { vfs_shim::real::<LogFile>(file) }
}

/// The bytes `file` holds back.
///
/// # Safety
/// `file` is an open log file, used by one thread at a time (SQLite's
/// connection mutex), and the reference is not kept across [`flush`].
unsafe fn pending<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Pending {
    unsafe { &mut *(*file.cast::<LogFile>()).pending }
}

/// Write straight to the default VFS's file.
unsafe fn write_through(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        match vfs_shim::methods::<LogFile>(file).xWrite {
            Some(xwrite) => xwrite(real(file), data, amount, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        // SAFETY: SQLite passes the struct [`install`] registered.
        let base = vfs_shim::base_of(vfs);
        let Some(base_open) = (*base).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return base_open(base, name, file, flags, out_flags);
        }
        let log = file.cast::<LogFile>();
        (*log).base.pMethods = std::ptr::null();
        (*log).pending = std::ptr::null_mut();
        let rc = base_open(base, name, real(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (*log).pending = Box::into_raw(Box::default());
        (*log).base.pMethods = &LOG_METHODS;
        ffi::SQLITE_OK
    }
}

/// Version 1: a log file has no shared memory and is never memory-mapped.
static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(vfs_shim::sector_size::<LogFile>),
    xDeviceCharacteristics: Some(vfs_shim::device_characteristics::<LogFile>),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Write the pending bytes, if any, in one write.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let pending = pending(file);
        if pending.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Ok(amount) = c_int::try_from(pending.bytes.len()) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let rc = write_through(file, pending.bytes.as_ptr().cast(), amount, pending.start);
        pending.bytes.clear();
        #[cfg(test)]
        tests::count_flush();
        rc
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    unsafe {
        let held = pending(file);
        let commit_page = std::mem::take(&mut held.commit_page_next);
        let appends = offset > 0 && offset >= held.log_end;
        let follows = offset == held.start + held.bytes.len() as i64;
        let fits = held.bytes.len() + amount.max(0) as usize <= MAX_WRITE;
        let joins = held.bytes.is_empty() || (follows && fits);
        if !appends || !joins {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let pending = pending(file);
        let end = offset + i64::from(amount.max(0));
        if !appends {
            // The log header of a new generation, or a frame rewritten in
            // place (a spilled page written again, checksums redone before
            // the commit is published): written at once.
            pending.log_end = if offset == 0 {
                end
            } else {
                pending.log_end.max(end)
            };
            return write_through(file, data, amount, offset);
        }
        if pending.bytes.is_empty() {
            pending.start = offset;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount.max(0) as usize);
        pending.bytes.extend_from_slice(bytes);
        pending.log_end = end;
        if commit_page {
            return flush(file);
        }
        // An appended frame header with a non-zero database size marks a
        // commit: its page, appended next, is the transaction's last frame.
        pending.commit_page_next =
            bytes.len() == FRAME_HEADER && offset >= LOG_HEADER && bytes[4..8] != [0u8; 4];
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let rc = flush(file);
        let log = file.cast::<LogFile>();
        drop(Box::from_raw((*log).pending));
        (*log).pending = std::ptr::null_mut();
        let closed = vfs_shim::methods::<LogFile>(file)
            .xClose
            .map_or(ffi::SQLITE_OK, |x| x(real(file)));
        (*log).base.pMethods = std::ptr::null();
        if rc != ffi::SQLITE_OK { rc } else { closed }
    }
}

/// Forward `$method` to the default VFS's file after flushing.
macro_rules! flushed {
    ($file:expr, $method:ident ( $($arg:expr),* )) => {{
        let rc = flush($file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        vfs_shim::forward!(LogFile, $file, $method($($arg),*))
    }};
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        let pending = pending(file);
        pending.log_end = pending.log_end.min(size);
        flushed!(file, xTruncate(size))
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe { flushed!(file, xSync(flags)) }
}

// Reads, sizes, locks and file controls see every byte written so far.
vfs_shim::forwarding_methods!(LogFile, |file| flush(file));

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use rusqlite::{Connection, OpenFlags, params};

    use super::*;

    thread_local! {
        static FLUSHES: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) fn count_flush() {
        FLUSHES.with(|count| count.set(count.get() + 1));
    }

    fn flushes() -> u64 {
        FLUSHES.with(Cell::get)
    }

    /// A directory removed when the test ends.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "wasp-wal-vfs-test-{}",
                crate::event::new_event_id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open_store(path: &std::path::Path) -> Connection {
        register().unwrap();
        let connection =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .unwrap();
        connection
    }

    fn integrity(connection: &Connection) -> String {
        connection
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_commit_reaches_the_log_in_one_write() {
        let dir = Scratch::new();
        let connection = open_store(&dir.path().join("db"));
        connection
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        let before = flushes();
        let tx = connection.unchecked_transaction().unwrap();
        for id in 0..50 {
            tx.execute("INSERT INTO t VALUES (?1, zeroblob(3000))", params![id])
                .unwrap();
        }
        tx.commit().unwrap();
        // About 50 frames, 100 writes by SQLite: two writes by the file, as
        // one write holds at most 30 frames.
        assert_eq!(flushes() - before, 2);
    }

    #[test]
    fn another_connection_reads_every_commit_and_the_file_stays_sound() {
        let dir = Scratch::new();
        let path = dir.path().join("db");
        let writer = open_store(&path);
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        // The default VFS reads what this one wrote.
        let reader = Connection::open(&path).unwrap();
        let summary = |connection: &Connection| -> (i64, i64, i64) {
            connection
                .query_row(
                    "SELECT COUNT(*), TOTAL(id), TOTAL(length(body)) FROM t",
                    [],
                    |r| {
                        let total = |i| r.get::<_, f64>(i).map(|v| v as i64);
                        Ok((r.get(0)?, total(1)?, total(2)?))
                    },
                )
                .unwrap()
        };
        // From 1 to 40 rows of a page each: some commits fill a write up to
        // the commit frame's header, whose page then starts the next write.
        for round in 0..160_i64 {
            let tx = writer.unchecked_transaction().unwrap();
            for n in 0..(round % 40 + 1) {
                tx.execute(
                    "INSERT INTO t (body) VALUES (?1)",
                    params![format!(
                        "{round}-{n}-{}",
                        "x".repeat(2500 + 10 * n as usize)
                    )],
                )
                .unwrap();
            }
            if round % 3 == 0 {
                tx.execute("DELETE FROM t WHERE id % 5 = 0", []).unwrap();
            }
            tx.commit().unwrap();
            // The other connection first: the writer's own reads would
            // flush anything left behind.
            let seen = summary(&reader);
            assert_eq!(seen, summary(&writer), "round {round}");
            // The log starts again from its header, in place or truncated.
            if round % 50 == 24 {
                writer
                    .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .unwrap();
            }
            if round % 50 == 49 {
                writer
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
                let log = std::fs::metadata(path.with_file_name("db-wal")).unwrap();
                assert_eq!(log.len(), 0, "round {round}: the log is truncated");
            }
        }
        assert_eq!(integrity(&reader), "ok");
        drop((writer, reader));
        let reopened = Connection::open(&path).unwrap();
        assert_eq!(integrity(&reopened), "ok");
    }

    #[test]
    fn transactions_larger_than_the_cache_spill_roll_back_and_rewrite_frames() {
        let dir = Scratch::new();
        let path = dir.path().join("db");
        let connection = open_store(&path);
        // A cache of 10 pages: big transactions write frames before their
        // commit, and then overwrite frames they wrote themselves.
        connection
            .execute_batch(
                "PRAGMA cache_size = 10;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, body BLOB);",
            )
            .unwrap();
        let fill = |tx: &Connection, from: i64| {
            for id in from..from + 300 {
                tx.execute("INSERT INTO t VALUES (?1, 0, zeroblob(900))", params![id])
                    .unwrap();
            }
        };
        let tx = connection.unchecked_transaction().unwrap();
        fill(&tx, 0);
        tx.rollback().unwrap();
        let tx = connection.unchecked_transaction().unwrap();
        fill(&tx, 1000);
        for _ in 0..3 {
            tx.execute("UPDATE t SET n = n + 1", []).unwrap();
        }
        tx.commit().unwrap();
        drop(connection);
        let reopened = Connection::open(&path).unwrap();
        assert_eq!(integrity(&reopened), "ok");
        let (count, min, total): (i64, i64, i64) = reopened
            .query_row("SELECT COUNT(*), MIN(id), SUM(n) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((count, min, total), (300, 1000, 900));
    }
}
