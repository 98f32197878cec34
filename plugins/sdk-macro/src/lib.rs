//! The `export!` macro of wasp-plugin-sdk.
//!
//! `export!(MyPlugin: filter, transform)` generates, in the calling crate, a
//! WIT world that exports `wasp:plugin/plugin` plus exactly the listed kinds
//! (so the component's exports say what it can be used as), runs
//! wit-bindgen over it, and implements the generated traits by calling the
//! SDK's runtime with `MyPlugin`'s [`Plugin`]/[`Filter`]/… implementations.
//! The WIT is this crate's `wit/` (the repository's one `wit/` folder, by a
//! symlink that `cargo package` turns into a copy), read by absolute path
//! with its version taken from its `package` line.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Path, Token};

/// The WIT package every plugin is built against.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");
/// A file of the package whose first line is `package wasp:plugin@VERSION;`.
const WIT_TYPES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wit/types.wit"));
const KINDS: [&str; 4] = ["filter", "transform", "route", "format"];

struct ExportInput {
    plugin: Path,
    kinds: Vec<Ident>,
}

impl Parse for ExportInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let plugin: Path = input.parse()?;
        input.parse::<Token![:]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `:` and the kinds the plugin implements, e.g. `export!(MyPlugin: filter)`",
            )
        })?;
        let kinds = Punctuated::<Ident, Token![,]>::parse_separated_nonempty(input)?;
        let mut seen = Vec::new();
        for kind in &kinds {
            let name = kind.to_string();
            if !KINDS.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    kind.span(),
                    format!(
                        "unknown plugin kind `{name}`; expected one of: {}",
                        KINDS.join(", ")
                    ),
                ));
            }
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    kind.span(),
                    format!("kind `{name}` is listed twice"),
                ));
            }
            seen.push(name);
        }
        Ok(Self {
            plugin,
            kinds: kinds.into_iter().collect(),
        })
    }
}

/// The version on the `package` line of the WIT (`0.1.0`).
fn package_version() -> &'static str {
    WIT_TYPES
        .lines()
        .find_map(|line| line.trim().strip_prefix("package wasp:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("wit/types.wit starts with `package wasp:plugin@VERSION;`")
}

/// Export a type as a wasp plugin of the listed kinds.
///
/// ```ignore
/// wasp_plugin_sdk::export!(KeywordFilter: filter);
/// wasp_plugin_sdk::export!(Everything: filter, transform, route, format);
/// ```
#[proc_macro]
pub fn export(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as ExportInput);
    expand(&input).into()
}

fn expand(input: &ExportInput) -> proc_macro2::TokenStream {
    let wit_dir = std::path::Path::new(WIT_DIR)
        .canonicalize()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| WIT_DIR.to_owned());
    let version = package_version();
    let mut world = format!(
        "package wasp:guest;\nworld plugin {{\n  include wasp:plugin/imports@{version};\n  export wasp:plugin/plugin@{version};\n"
    );
    for kind in &input.kinds {
        world.push_str(&format!("  export wasp:plugin/{kind}@{version};\n"));
    }
    world.push_str("}\n");

    let plugin = &input.plugin;
    let kind_impls = input
        .kinds
        .iter()
        .map(|kind| kind_impl(&kind.to_string(), plugin));
    let has_format = input.kinds.iter().any(|kind| kind == "format");
    let endpoints = if has_format {
        quote! {
            static ENDPOINTS: ::wasp_plugin_sdk::__private::EndpointSlot<
                <#plugin as ::wasp_plugin_sdk::Format>::Settings,
            > = ::std::cell::RefCell::new(::std::collections::HashMap::new());
        }
    } else {
        quote! {}
    };
    let module = Ident::new("__wasp_plugin_bindings", Span::call_site());
    let interface =
        |name: &str| syn::LitStr::new(&format!("wasp:plugin/{name}@{version}"), Span::call_site());
    let (types, log, clock) = (interface("types"), interface("log"), interface("clock"));

    // Only a wasm build is a component; natively (unit tests, benchmarks
    // against the same code) the plugin is a plain Rust library.
    quote! {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(unsafe_code, dead_code, unused_imports, unused_qualifications, clippy::all, missing_docs)]
        mod #module {
            use super::*;

            ::wasp_plugin_sdk::__private::wit_bindgen::generate!({
                inline: #world,
                path: #wit_dir,
                world: "wasp:guest/plugin",
                runtime_path: "::wasp_plugin_sdk::__private::wit_bindgen::rt",
                with: {
                    #types: ::wasp_plugin_sdk::wit::types,
                    #log: ::wasp_plugin_sdk::wit::log,
                    #clock: ::wasp_plugin_sdk::wit::clock,
                },
            });

            ::std::thread_local! {
                static PLUGIN: ::wasp_plugin_sdk::__private::Slot<#plugin> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
                #endpoints
            }

            pub struct __WaspGlue;

            impl exports::wasp::plugin::plugin::Guest for __WaspGlue {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), ::wasp_plugin_sdk::PluginError> {
                    PLUGIN.with(|slot| ::wasp_plugin_sdk::__private::init::<#plugin>(slot, config))
                }
            }

            #(#kind_impls)*

            export!(__WaspGlue);
        }
    }
}

fn kind_impl(kind: &str, plugin: &Path) -> proc_macro2::TokenStream {
    let rt = quote!(::wasp_plugin_sdk::__private);
    let types = quote!(::wasp_plugin_sdk::wit::types);
    let error = quote!(::wasp_plugin_sdk::PluginError);
    match kind {
        "filter" => quote! {
            impl exports::wasp::plugin::filter::Guest for __WaspGlue {
                fn filter(event: #types::Event) -> ::std::result::Result<bool, #error> {
                    PLUGIN.with(|slot| #rt::filter::<#plugin>(slot, event))
                }
            }
        },
        "transform" => quote! {
            impl exports::wasp::plugin::transform::Guest for __WaspGlue {
                fn transform(event: #types::Event) -> ::std::result::Result<#types::Transformed, #error> {
                    PLUGIN.with(|slot| #rt::transform::<#plugin>(slot, event))
                }
            }
        },
        "route" => quote! {
            impl exports::wasp::plugin::route::Guest for __WaspGlue {
                fn route(event: #types::Event) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, #error> {
                    PLUGIN.with(|slot| #rt::route::<#plugin>(slot, event))
                }
            }
        },
        "format" => quote! {
            impl exports::wasp::plugin::format::Guest for __WaspGlue {
                fn configure_endpoint(
                    endpoint: ::std::string::String,
                    settings: ::std::string::String,
                ) -> ::std::result::Result<(), #error> {
                    PLUGIN.with(|slot| ENDPOINTS.with(|endpoints| {
                        #rt::configure_endpoint::<#plugin>(slot, endpoints, endpoint, settings)
                    }))
                }

                fn format(
                    event: #types::Event,
                    endpoint: ::std::string::String,
                ) -> ::std::result::Result<#types::Formatted, #error> {
                    PLUGIN.with(|slot| ENDPOINTS.with(|endpoints| {
                        #rt::format::<#plugin>(slot, endpoints, event, endpoint)
                    }))
                }
            }
        },
        _ => unreachable!("kinds are validated while parsing"),
    }
}
