//! Watching the config and plugin files. Editors and deploy tools often
//! replace a file (write a temporary file, rename it over the old one),
//! which silently ends a watch on the file itself; so the *directories* are
//! watched and events are filtered by file name. Bursts of events are
//! debounced into one reload, and the watched set is refreshed after each
//! reload (the new config may name other plugin files).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::reload::{Reloader, Trigger};

/// Quiet time after the last change before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watch `reloader`'s files until `stop` fires, reloading on changes.
pub async fn run(reloader: Arc<Reloader>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let handler = move |result: notify::Result<notify::Event>| {
        if let Ok(event) = result
            && relevant(&event.kind)
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::error!(%error, "cannot watch files; reload with SIGHUP or POST /api/reload");
            return;
        }
    };
    let mut watched = WatchSet::default();
    watched.update(&mut watcher, &reloader.watched_files());
    loop {
        let path = tokio::select! {
            path = rx.recv() => match path { Some(path) => path, None => return },
            _ = stop.changed() => return,
        };
        if !watched.concerns(&path) {
            continue;
        }
        // Let the burst (editor save, copy, rename) finish.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        tracing::info!(file = %path.display(), "change detected; reloading");
        reloader.reload(Trigger::FileChange).await;
        watched.update(&mut watcher, &reloader.watched_files());
    }
}

/// Writes, creations, renames and removals matter; opens and reads do not
/// (wasp reading the config would otherwise trigger a reload).
fn relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Other => false,
    }
}

/// Directories watched, and the file names that matter in each.
#[derive(Default)]
struct WatchSet {
    files: BTreeMap<PathBuf, BTreeSet<OsString>>,
}

impl WatchSet {
    fn update(&mut self, watcher: &mut impl Watcher, files: &[PathBuf]) {
        let mut wanted: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
        for file in files {
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
                continue;
            };
            wanted
                .entry(dir.to_path_buf())
                .or_default()
                .insert(name.to_owned());
        }
        for dir in self.files.keys() {
            if !wanted.contains_key(dir) {
                let _ = watcher.unwatch(dir);
            }
        }
        for dir in wanted.keys() {
            if !self.files.contains_key(dir)
                && let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive)
            {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch directory");
            }
        }
        self.files = wanted;
    }

    fn concerns(&self, path: &Path) -> bool {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        match (absolute.parent(), absolute.file_name()) {
            (Some(dir), Some(name)) => self
                .files
                .get(dir)
                .is_some_and(|names| names.contains(name)),
            _ => false,
        }
    }
}
