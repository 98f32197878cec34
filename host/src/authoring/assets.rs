//! What the `wasp` binary carries for plugin authors, so that a project
//! builds without a checkout of this repository: the WIT contract (from the
//! one `wit/` folder), the JavaScript/TypeScript and Python SDKs, the JS build
//! script and the project templates (`plugins/templates/`).

use super::project::Lang;
use crate::plugin::Kind;
use crate::plugin::bindings::wit_package;

/// The WIT package every plugin is built against: `(file name, text)`.
pub const WIT: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("kinds.wit", include_str!("../../../wit/kinds.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

/// The WIT world a project exporting `kinds` is built for (written next to
/// the package's own files as `project.wit`).
pub fn project_world(kinds: &[Kind]) -> String {
    let mut world = format!(
        "package {};\n\n/// Written by `wasp plugin build`: the kinds this project exports.\nworld project {{\n    include imports;\n    export plugin;\n",
        wit_package::id()
    );
    for kind in kinds {
        world.push_str(&format!("    export {kind};\n"));
    }
    world.push_str("}\n");
    world
}

/// The JavaScript SDK module (also used by TypeScript projects).
pub const JS_SDK: &str = include_str!("../../../plugins/js/sdk/wasp.js");
/// The JavaScript SDK's types and the WIT's, for TypeScript and editors.
pub const JS_SDK_TYPES: &str = include_str!("../../../plugins/js/sdk/wasp.d.ts");
/// Bundles and componentizes a JS/TS project (run with node).
pub const JS_BUILD: &str = include_str!("../../../plugins/js/sdk/build.mjs");
/// The Python SDK module.
pub const PYTHON_SDK: &str = include_str!("../../../plugins/python/sdk/wasp.py");

/// The sample event every new project gets.
pub const SAMPLE_EVENT: &str = include_str!("../../../config/events/message.json");

/// Exact versions of what generated projects build with.
pub mod versions {
    /// `@bytecodealliance/componentize-js` (npm).
    pub const COMPONENTIZE_JS: &str = "0.23.0";
    /// `@bytecodealliance/preview2-shim` (npm): imported by componentize-js
    /// at build time but only declared by it as a dev dependency.
    pub const PREVIEW2_SHIM: &str = "0.25.0";
    /// `esbuild` (npm).
    pub const ESBUILD: &str = "0.28.2";
    /// `typescript` (npm).
    pub const TYPESCRIPT: &str = "5.9.3";
    /// `componentize-py` (PyPI).
    pub const COMPONENTIZE_PY: &str = "0.25.1";
    /// The Rust SDK crate, `wasp-plugin-sdk`.
    pub const RUST_SDK: &str = "0.1.0";
}

macro_rules! template {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../../plugins/templates/", $path)),
        )
    };
}

/// Project files shared by every language: `(path in the project, text)`.
const COMMON: [(&str, &str); 1] = [template!("common/README.md")];

/// A language's files other than its plugin source.
fn language_files(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[template!("rust/Cargo.toml"), template!("rust/gitignore")],
        Lang::Js => &[template!("js/package.json"), template!("js/gitignore")],
        Lang::Ts => &[
            template!("ts/package.json"),
            template!("ts/tsconfig.json"),
            template!("js/gitignore"),
        ],
        Lang::Python => &[
            template!("python/pyproject.toml"),
            template!("python/gitignore"),
        ],
    }
}

/// The plugin source of one language and kind.
fn source(lang: Lang, kind: Kind) -> (&'static str, &'static str) {
    match (lang, kind) {
        (Lang::Rust, Kind::Filter) => template!("rust/filter.rs"),
        (Lang::Rust, Kind::Transform) => template!("rust/transform.rs"),
        (Lang::Rust, Kind::Route) => template!("rust/route.rs"),
        (Lang::Rust, Kind::Format) => template!("rust/format.rs"),
        (Lang::Js, Kind::Filter) => template!("js/filter.js"),
        (Lang::Js, Kind::Transform) => template!("js/transform.js"),
        (Lang::Js, Kind::Route) => template!("js/route.js"),
        (Lang::Js, Kind::Format) => template!("js/format.js"),
        (Lang::Ts, Kind::Filter) => template!("ts/filter.ts"),
        (Lang::Ts, Kind::Transform) => template!("ts/transform.ts"),
        (Lang::Ts, Kind::Route) => template!("ts/route.ts"),
        (Lang::Ts, Kind::Format) => template!("ts/format.ts"),
        (Lang::Python, Kind::Filter) => template!("python/filter.py"),
        (Lang::Python, Kind::Transform) => template!("python/transform.py"),
        (Lang::Python, Kind::Route) => template!("python/route.py"),
        (Lang::Python, Kind::Format) => template!("python/format.py"),
    }
}

/// The test cases of a kind's sample plugin (the same in every language).
fn cases(kind: Kind) -> &'static str {
    match kind {
        Kind::Filter => include_str!("../../../plugins/templates/common/cases/filter.json"),
        Kind::Transform => include_str!("../../../plugins/templates/common/cases/transform.json"),
        Kind::Route => include_str!("../../../plugins/templates/common/cases/route.json"),
        Kind::Format => include_str!("../../../plugins/templates/common/cases/format.json"),
    }
}

/// Every file of a new project, unrendered: `(path in the project, text)`.
/// Template paths map to project paths: `gitignore` → `.gitignore`, the
/// plugin source → the language's entry ([`Lang::entry`]).
pub fn project_files(lang: Lang, kind: Kind) -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = Vec::new();
    for (path, text) in COMMON.iter().chain(language_files(lang)) {
        let name = path.rsplit('/').next().expect("a template path has a name");
        let name = if name == "gitignore" {
            ".gitignore"
        } else {
            name
        };
        files.push((name.to_owned(), text));
    }
    files.push((lang.entry().to_owned(), source(lang, kind).1));
    files.push(("cases.json".to_owned(), cases(kind)));
    files.push(("event.json".to_owned(), SAMPLE_EVENT));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wit_package_is_read_from_the_wit_folder() {
        assert_eq!(wit_package::id(), "wasp:plugin@0.1.0");
        assert_eq!(
            crate::plugin::bindings::export_names::FILTER,
            format!(
                "{}",
                wit_package::id().replace(":plugin@", ":plugin/filter@")
            )
        );
    }

    #[test]
    fn the_typescript_types_name_every_field_of_the_wit_event() {
        let types = WIT[0].1;
        let record = types
            .split("record event {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("types.wit has record event");
        let fields: Vec<String> = record
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("///") && line.contains(':'))
            .map(|line| lower_camel(line.split(':').next().unwrap().trim()))
            .collect();
        assert_eq!(fields.len(), 10, "{fields:?}");
        let declared = JS_SDK_TYPES
            .split("export interface Event {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("wasp.d.ts declares Event");
        for field in &fields {
            assert!(
                declared.contains(&format!("  {field}:"))
                    || declared.contains(&format!("  {field}?:")),
                "wasp.d.ts lacks Event.{field}"
            );
        }
    }

    fn lower_camel(kebab: &str) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in kebab.chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }
}
