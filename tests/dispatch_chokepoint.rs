//! P1-A: the dispatch chokepoint. Only `hotpath::dispatch` may name or construct the
//! trading-capable venue client; nothing else in the workspace can reach the venue to trade.
//!
//! The check parses every `.rs` file of the workspace with `syn` (an AST, not grep: comments,
//! strings and doc text cannot fool it, and a renamed import is still a path to the type).

use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The trading-capable client type and the module allowed to own it.
const CLIENT_TYPE: &str = "TradingClient";
const CHOKEPOINT_DIR: &str = "hotpath/src/dispatch";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build output and VCS metadata are not source.
            if name == "target" || name.starts_with("target-") || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Every place a file names the client type: in a path, an import, or a type.
#[derive(Default)]
struct ClientMentions {
    lines: Vec<usize>,
}

impl ClientMentions {
    /// Macro bodies are opaque token streams to `syn`; walk them so that
    /// `vec![TradingClient::connect(..)]` cannot hide a use.
    fn scan_tokens(&mut self, tokens: proc_macro2::TokenStream) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(ident) => self.visit_ident(&ident),
                proc_macro2::TokenTree::Group(group) => self.scan_tokens(group.stream()),
                proc_macro2::TokenTree::Punct(_) | proc_macro2::TokenTree::Literal(_) => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for ClientMentions {
    fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
        if ident == CLIENT_TYPE {
            self.lines.push(ident.span().start().line);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        syn::visit::visit_macro(self, mac);
        self.scan_tokens(mac.tokens.clone());
    }
}

fn mentions_in(path: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(path).expect("workspace source is readable");
    let file = syn::parse_file(&text)
        .unwrap_or_else(|e| panic!("{} does not parse as Rust: {e}", path.display()));
    let mut visitor = ClientMentions::default();
    visitor.visit_file(&file);
    visitor.lines
}

fn is_inside_chokepoint(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root).is_ok_and(|rel| rel.starts_with(CHOKEPOINT_DIR))
}

/// Negative control of the scanner itself: a file that names the client outside the
/// chokepoint must be found, or the real check below proves nothing.
#[test]
fn chokepoint_scanner_finds_a_planted_violation() {
    let planted = "mod sneaky { fn f(c: &crate::dispatch::TradingClient) {} }";
    let file = syn::parse_file(planted).expect("planted source parses");
    let mut visitor = ClientMentions::default();
    visitor.visit_file(&file);
    assert_eq!(visitor.lines, vec![1]);

    let in_macro = "fn g() { let v = vec![TradingClient::connect()]; }";
    let file = syn::parse_file(in_macro).expect("macro source parses");
    let mut visitor = ClientMentions::default();
    visitor.visit_file(&file);
    assert_eq!(visitor.lines, vec![1], "a use inside a macro body is still a use");

    let commented = "// TradingClient in a comment\nconst S: &str = \"TradingClient\";";
    let file = syn::parse_file(commented).expect("commented source parses");
    let mut visitor = ClientMentions::default();
    visitor.visit_file(&file);
    assert!(visitor.lines.is_empty(), "comments and strings are not code");
}

#[test]
fn test_dispatch_chokepoint_no_direct_exchange_client_usage() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    assert!(files.len() > 10, "scanner found too few files ({}) to be meaningful", files.len());

    let mut inside = 0usize;
    let mut violations = Vec::new();
    for path in &files {
        // This test names the type in constants and planted snippets (strings, not paths);
        // the compile-fail fixtures must name it to prove it is unreachable.
        let rel = path.strip_prefix(&root).unwrap_or(path);
        if rel.starts_with("tests/compile_fail") {
            continue;
        }
        let lines = mentions_in(path);
        if is_inside_chokepoint(&root, path) {
            inside += lines.len();
        } else {
            violations.extend(lines.into_iter().map(|l| format!("{}:{l}", rel.display())));
        }
    }
    assert!(inside > 0, "{CLIENT_TYPE} not found inside {CHOKEPOINT_DIR}: did it move?");
    assert!(violations.is_empty(), "{CLIENT_TYPE} named outside {CHOKEPOINT_DIR}: {violations:#?}");
}

/// The type and its constructor are not public beyond `hotpath`: an AST check of every item
/// that defines them, and a crate outside `hotpath` that tries to use them fails to compile.
#[test]
fn test_dispatch_visibility_is_restricted() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join(CHOKEPOINT_DIR), &mut files);
    let mut checked = 0usize;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("dispatch source is readable");
        let file = syn::parse_file(&text).expect("dispatch source parses");
        for item in &file.items {
            match item {
                syn::Item::Struct(s) if s.ident == CLIENT_TYPE => {
                    assert!(
                        !matches!(s.vis, syn::Visibility::Public(_)),
                        "{} declares `pub struct {CLIENT_TYPE}`",
                        path.display()
                    );
                    checked += 1;
                }
                syn::Item::Impl(imp) if impl_self_is_client(imp) => {
                    for it in &imp.items {
                        if let syn::ImplItem::Fn(f) = it {
                            assert!(
                                !matches!(f.vis, syn::Visibility::Public(_)),
                                "{}: `pub fn {}` on {CLIENT_TYPE} escapes the crate",
                                path.display(),
                                f.sig.ident
                            );
                            checked += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(checked > 0, "no {CLIENT_TYPE} definition found in {CHOKEPOINT_DIR}");

    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}

fn impl_self_is_client(imp: &syn::ItemImpl) -> bool {
    matches!(&*imp.self_ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == CLIENT_TYPE))
}
