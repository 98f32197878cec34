//! A plugin project on disk: its language (from its manifest), its name, the
//! kinds it exports, where its source starts and where its component goes.
//!
//! - Rust: `Cargo.toml` (`[package] name`, kinds in `[package.metadata.wasp]`);
//! - JavaScript / TypeScript: `package.json` (`name`, `"wasp": {"kinds": […]}`),
//!   TypeScript when the entry is `src/plugin.ts`;
//! - Python: `pyproject.toml` (`[project] name`, `[tool.wasp] kinds`).
//!
//! The wasp section may also name the project's test cases (`cases`, default
//! `cases.json`): the examples in other languages share the Rust example's.
//!
//! Every project's component is written to `dist/<name>.wasm`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plugin::Kind;

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with the `wasp-plugin-sdk` crate.
    Rust,
    /// JavaScript, with componentize-js.
    Js,
    /// TypeScript, checked by `tsc`, bundled by esbuild, with componentize-js.
    Ts,
    /// Python, with componentize-py.
    Python,
}

impl Lang {
    /// Every language.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Js, Lang::Ts, Lang::Python];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Ts => "ts",
            Lang::Python => "python",
        }
    }

    /// Parse a name (`rust`, `js`/`javascript`, `ts`/`typescript`, `python`/`py`).
    pub fn parse(name: &str) -> Option<Lang> {
        match name.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Lang::Rust),
            "js" | "javascript" => Some(Lang::Js),
            "ts" | "typescript" => Some(Lang::Ts),
            "python" | "py" => Some(Lang::Python),
            _ => None,
        }
    }

    /// Where the plugin's code starts, relative to the project.
    pub fn entry(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Js => "src/plugin.js",
            Lang::Ts => "src/plugin.ts",
            Lang::Python => "src/app.py",
        }
    }

    /// The manifest file that marks a project of this language.
    pub fn manifest(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Js | Lang::Ts => "package.json",
            Lang::Python => "pyproject.toml",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a directory is not a plugin project.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// No manifest.
    #[error(
        "{0} is not a plugin project: it has no Cargo.toml, package.json or pyproject.toml (create one with `wasp plugin new NAME --lang rust|js|ts|python`)"
    )]
    NoManifest(PathBuf),
    /// The manifest cannot be read or parsed.
    #[error("{path}: {message}")]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One plugin project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its directory.
    pub dir: PathBuf,
    /// Its name (the package name), which names the component.
    pub name: String,
    /// Its language.
    pub lang: Lang,
    /// The kinds it exports (for Rust: as declared in the manifest; the
    /// `export!` macro decides).
    pub kinds: Vec<Kind>,
    /// Its test cases, relative to `dir` (`cases` in the manifest's wasp
    /// section; default `cases.json`).
    pub cases: String,
}

impl Project {
    /// Read the project in `dir`.
    pub fn open(dir: &Path) -> Result<Project, ProjectError> {
        let bad = |path: &Path, message: String| ProjectError::BadManifest {
            path: path.to_owned(),
            message,
        };
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()));
        let cargo = dir.join("Cargo.toml");
        let package_json = dir.join("package.json");
        let pyproject = dir.join("pyproject.toml");
        let (lang, name, kinds, cases, manifest) = if cargo.is_file() {
            let value: toml::Table = read(&cargo)?
                .parse()
                .map_err(|e: toml::de::Error| bad(&cargo, e.to_string()))?;
            let name = value
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str());
            let kinds = value
                .get("package")
                .and_then(|p| p.get("metadata"))
                .and_then(|m| m.get("wasp"))
                .and_then(|w| w.get("kinds"))
                .and_then(|k| k.as_array())
                .map(|list| {
                    list.iter()
                        .map(|k| k.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                });
            let cases = value
                .get("package")
                .and_then(|p| p.get("metadata"))
                .and_then(|m| m.get("wasp"))
                .and_then(|w| w.get("cases"))
                .and_then(|c| c.as_str())
                .map(str::to_owned);
            (Lang::Rust, name.map(str::to_owned), kinds, cases, cargo)
        } else if package_json.is_file() {
            let value: serde_json::Value = serde_json::from_str(&read(&package_json)?)
                .map_err(|e| bad(&package_json, e.to_string()))?;
            let lang = if dir.join(Lang::Ts.entry()).is_file() {
                Lang::Ts
            } else {
                Lang::Js
            };
            let kinds = value["wasp"]["kinds"]
                .as_array()
                .map(|list| list.iter().map(|k| k.as_str().map(str::to_owned)).collect());
            let cases = value["wasp"]["cases"].as_str().map(str::to_owned);
            let name = value["name"].as_str().map(str::to_owned);
            (lang, name, kinds, cases, package_json)
        } else if pyproject.is_file() {
            let value: toml::Table = read(&pyproject)?
                .parse()
                .map_err(|e: toml::de::Error| bad(&pyproject, e.to_string()))?;
            let name = value
                .get("project")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str());
            let kinds = value
                .get("tool")
                .and_then(|t| t.get("wasp"))
                .and_then(|w| w.get("kinds"))
                .and_then(|k| k.as_array())
                .map(|list| list.iter().map(|k| k.as_str().map(str::to_owned)).collect());
            let cases = value
                .get("tool")
                .and_then(|t| t.get("wasp"))
                .and_then(|w| w.get("cases"))
                .and_then(|c| c.as_str())
                .map(str::to_owned);
            (
                Lang::Python,
                name.map(str::to_owned),
                kinds,
                cases,
                pyproject,
            )
        } else {
            return Err(ProjectError::NoManifest(dir.to_owned()));
        };
        let name = name.ok_or_else(|| bad(&manifest, "the project has no name".into()))?;
        let kinds = parse_kinds(&manifest, lang, kinds)?;
        Ok(Project {
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_owned()),
            name,
            lang,
            kinds,
            cases: cases.unwrap_or_else(|| "cases.json".into()),
        })
    }

    /// Where the built component goes: `dist/<name>.wasm`.
    pub fn artifact(&self) -> PathBuf {
        self.dir
            .join("dist")
            .join(format!("{}.wasm", file_stem(&self.name)))
    }

    /// The project's test cases.
    pub fn cases(&self) -> PathBuf {
        self.dir.join(&self.cases)
    }
}

/// A package name as a file name (`@scope/name` → `name`).
fn file_stem(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn parse_kinds(
    manifest: &Path,
    lang: Lang,
    kinds: Option<Vec<Option<String>>>,
) -> Result<Vec<Kind>, ProjectError> {
    let where_ = match lang {
        Lang::Rust => "[package.metadata.wasp] kinds",
        Lang::Js | Lang::Ts => "\"wasp\": {\"kinds\": [...]}",
        Lang::Python => "[tool.wasp] kinds",
    };
    let bad = |message: String| ProjectError::BadManifest {
        path: manifest.to_owned(),
        message,
    };
    let Some(kinds) = kinds else {
        if lang == Lang::Rust {
            return Ok(Vec::new());
        }
        return Err(bad(format!(
            "name the kinds the plugin exports with {where_} (filter, transform, route, format)"
        )));
    };
    let mut parsed = Vec::new();
    for kind in kinds {
        let kind = kind.as_deref().and_then(Kind::parse).ok_or_else(|| {
            bad(format!(
                "{where_}: {kind:?} is not filter, transform, route or format"
            ))
        })?;
        if !parsed.contains(&kind) {
            parsed.push(kind);
        }
    }
    if parsed.is_empty() && lang != Lang::Rust {
        return Err(bad(format!("{where_} is empty: name at least one kind")));
    }
    parsed.sort();
    Ok(parsed)
}
