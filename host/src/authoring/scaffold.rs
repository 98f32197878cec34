//! `wasp plugin new NAME --lang … --kind …`: write a complete, buildable
//! plugin project into a new folder, from the templates in [`super::assets`].

use std::path::{Path, PathBuf};

use super::assets::{self, versions};
use super::project::Lang;
use crate::plugin::Kind;

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot name a package in every language.
    #[error(
        "`{0}` cannot be a plugin name: use lower-case letters, digits and `-`, starting with a letter (e.g. `order-filter`)"
    )]
    BadName(String),
    /// The folder exists and is not empty.
    #[error("{0} already exists and is not empty; choose another name or --dir")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Create the project `name` in `dir` (which must not exist or be empty).
/// Returns the files written, relative to `dir`.
pub fn scaffold(
    dir: &Path,
    name: &str,
    lang: Lang,
    kind: Kind,
) -> Result<Vec<String>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let values = Values::new(dir, name, lang, kind);
    let mut written = Vec::new();
    for (path, template) in assets::project_files(lang, kind) {
        let target = dir.join(&path);
        let text = values.render(template);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, text)
        };
        write().map_err(|source| ScaffoldError::Write {
            path: target.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 64
}

/// The values templates are rendered with: `{{key}}` → value.
struct Values(Vec<(&'static str, String)>);

impl Values {
    fn new(dir: &Path, name: &str, lang: Lang, kind: Kind) -> Self {
        let shown_dir = dir.display().to_string();
        let (lang_name, build_note) = match lang {
            Lang::Rust => ("Rust", "cargo, for wasm32-wasip2"),
            Lang::Js => ("JavaScript", "npm install, esbuild, componentize-js"),
            Lang::Ts => ("TypeScript", "npm install, tsc, esbuild, componentize-js"),
            Lang::Python => ("Python", "componentize-py"),
        };
        Self(vec![
            ("name", name.to_owned()),
            ("file", name.to_owned()),
            ("type", camel_case(name)),
            ("kind", kind.to_string()),
            ("lang_name", lang_name.to_owned()),
            ("build_note", build_note.to_owned()),
            ("entry", lang.entry().to_owned()),
            ("dir", shown_dir),
            ("yaml_use", yaml_use(name, kind)),
            ("rust_sdk", rust_sdk_dependency()),
            ("componentize_js", versions::COMPONENTIZE_JS.to_owned()),
            ("esbuild", versions::ESBUILD.to_owned()),
            ("preview2_shim", versions::PREVIEW2_SHIM.to_owned()),
            ("typescript", versions::TYPESCRIPT.to_owned()),
            ("componentize_py", versions::COMPONENTIZE_PY.to_owned()),
        ])
    }

    fn render(&self, template: &str) -> String {
        let mut text = template.to_owned();
        for (key, value) in &self.0 {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        text
    }
}

/// `order-filter` → `OrderFilter`.
fn camel_case(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// How the README shows the plugin used in wasp.yaml.
fn yaml_use(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Filter | Kind::Transform => format!(
            "\nroutes:\n  - name: main\n    events: [message]\n    chain: [{name}]              # filters and transforms, in order\n    to: [my-endpoint]"
        ),
        Kind::Route => format!(
            "\nroutes:\n  - name: main\n    route: {name}                   # picks endpoints by name"
        ),
        Kind::Format => format!(
            "\nendpoints:\n  - name: my-endpoint\n    url: https://example.com/hook\n    format: {name}                  # this plugin formats the requests\n    settings: {{channel: ops}}"
        ),
    }
}

/// The `wasp-plugin-sdk` dependency line of a new Rust project: the SDK in
/// this wasp's source tree when there is one (a clone), else the published
/// crate.
fn rust_sdk_dependency() -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    match source.canonicalize() {
        Ok(path) if path.join("Cargo.toml").is_file() => format!(
            "wasp-plugin-sdk = {{ version = \"{}\", path = {:?} }}",
            versions::RUST_SDK,
            path.display().to_string()
        ),
        _ => format!("wasp-plugin-sdk = \"{}\"", versions::RUST_SDK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_language() {
        for good in ["hello", "order-filter", "a1"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Hello", "1abc", "a_b", "a b", "trailing-", "ä"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(camel_case("order-filter"), "OrderFilter");
    }

    #[test]
    fn every_language_and_kind_renders_without_leftover_placeholders() {
        let dir = std::env::temp_dir().join(format!("wasp-scaffold-{}", std::process::id()));
        for lang in Lang::ALL {
            for kind in Kind::ALL {
                let values = Values::new(&dir, "hello", lang, kind);
                for (path, template) in assets::project_files(lang, kind) {
                    let text = values.render(template);
                    assert!(!text.contains("{{"), "{lang} {kind} {path}: {text}");
                }
            }
        }
    }

    #[test]
    fn an_existing_folder_with_files_is_not_overwritten() {
        let dir = std::env::temp_dir().join(format!("wasp-scaffold-exists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let error = scaffold(&dir, "hello", Lang::Ts, Kind::Filter).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists(_)), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
            "mine"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
