//! What the store's SQLite VFS shims share: [`super::wal_vfs`] (a commit's
//! log frames in one write) and the crash test's recording VFS beneath it.
//!
//! A shim is registered as a copy of the VFS it wraps with its own `xOpen`
//! ([`register`]); every other VFS method stays the wrapped one's. A file
//! the shim opens is, in the `szOsFile` bytes SQLite allocates, a header of
//! the shim's own (type `H`, starting with SQLite's `sqlite3_file`) followed
//! by the wrapped VFS's file at [`real_offset`].

use std::ffi::{CString, c_int};

use rusqlite::ffi;

/// The registered struct: SQLite's, then the VFS it wraps, which a shim's
/// `xOpen` reads back with [`base_of`].
#[repr(C)]
struct Registered {
    vfs: ffi::sqlite3_vfs,
    base: *mut ffi::sqlite3_vfs,
}

/// Register `name` over `base`, opening files with `open`, whose files are
/// headers `H` followed by `base`'s own.
pub(super) fn register<H>(
    base: *mut ffi::sqlite3_vfs,
    name: &str,
    open: unsafe extern "C" fn(
        *mut ffi::sqlite3_vfs,
        ffi::sqlite3_filename,
        *mut ffi::sqlite3_file,
        c_int,
        *mut c_int,
    ) -> c_int,
) -> Result<(), String> {
    if base.is_null() {
        return Err(format!("no VFS for {name} to wrap"));
    }
    let name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `base` is a registered VFS (immutable once registered);
    // sqlite3_vfs_register is thread-safe; the registered struct and its
    // name are leaked, so they outlive every connection.
    unsafe {
        let mut vfs = *base;
        // The other methods stay the wrapped VFS's: they receive this
        // struct, whose fields they read (path length, app data) are copies
        // of their own.
        vfs.szOsFile = (real_offset::<H>() + (*base).szOsFile as usize) as c_int;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = name.into_raw();
        vfs.xOpen = Some(open);
        let registered = Box::into_raw(Box::new(Registered { vfs, base }));
        let rc = ffi::sqlite3_vfs_register(registered.cast(), 0);
        if rc != ffi::SQLITE_OK {
            return Err(format!("cannot register a VFS: SQLite code {rc}"));
        }
    }
    Ok(())
}

/// The VFS that the shim SQLite passes to `xOpen` wraps.
///
/// # Safety
/// `vfs` was registered by [`register`].
pub(super) unsafe fn base_of(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    unsafe { (*vfs.cast::<Registered>()).base }
}

/// Where the wrapped VFS's file starts after a header `H`.
pub(super) fn real_offset<H>() -> usize {
    let align = align_of::<u64>();
    size_of::<H>().div_ceil(align) * align
}

/// The wrapped VFS's file inside `file`.
///
/// # Safety
/// `file` was opened by a shim whose header is `H`.
pub(super) unsafe fn real<H>(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    unsafe { file.cast::<u8>().add(real_offset::<H>()).cast() }
}

/// The wrapped file's methods.
///
/// # Safety
/// As [`real`], and the wrapped file is open.
pub(super) unsafe fn methods<H>(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: an opened file's methods are static in the wrapped VFS.
    unsafe { &*(*real::<H>(file)).pMethods }
}

/// Call the wrapped file's `$method` (header type `$header`); an absent
/// method is an I/O error.
macro_rules! forward {
    ($header:ty, $file:expr, $method:ident ( $($arg:expr),* )) => {
        match vfs_shim::methods::<$header>($file).$method {
            Some(method) => method(vfs_shim::real::<$header>($file) $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    };
}
pub(super) use forward;

/// Define a shim's `read`, `file_size`, `lock`, `unlock`,
/// `check_reserved_lock` and `file_control` (header type `$header`): each
/// runs `$before(file)` first, returns its code unless it is `SQLITE_OK`,
/// then calls the wrapped file's method.
macro_rules! forwarding_methods {
    ($header:ty, $before:expr) => {
        unsafe extern "C" fn read(
            file: *mut ffi::sqlite3_file,
            data: *mut std::ffi::c_void,
            amount: std::ffi::c_int,
            offset: i64,
        ) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xRead(data, amount, offset)) }
        }

        unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xFileSize(size)) }
        }

        unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: std::ffi::c_int) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xLock(level)) }
        }

        unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: std::ffi::c_int) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xUnlock(level)) }
        }

        unsafe extern "C" fn check_reserved_lock(
            file: *mut ffi::sqlite3_file,
            out: *mut std::ffi::c_int,
        ) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xCheckReservedLock(out)) }
        }

        unsafe extern "C" fn file_control(
            file: *mut ffi::sqlite3_file,
            op: std::ffi::c_int,
            argument: *mut std::ffi::c_void,
        ) -> std::ffi::c_int {
            unsafe { vfs_shim::forwarding_methods!(@call $header, $before, file, xFileControl(op, argument)) }
        }
    };
    (@call $header:ty, $before:expr, $file:expr, $method:ident ( $($arg:expr),* )) => {{
        let rc = $before($file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        vfs_shim::forward!($header, $file, $method($($arg),*))
    }};
}
pub(super) use forwarding_methods;

/// `xSectorSize`, the wrapped file's.
pub(super) unsafe extern "C" fn sector_size<H>(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        methods::<H>(file)
            .xSectorSize
            .map_or(4096, |x| x(real::<H>(file)))
    }
}

/// `xDeviceCharacteristics`, the wrapped file's.
pub(super) unsafe extern "C" fn device_characteristics<H>(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        methods::<H>(file)
            .xDeviceCharacteristics
            .map_or(0, |x| x(real::<H>(file)))
    }
}
