//! Code generation: every `.proto` under `proto/` becomes Rust, with no hand-written glue.
//!
//! Two generators share the work:
//!
//! * **Messages** come from `pb-rs` 0.10 (quick-protobuf's generator): borrowing structs
//!   (`Cow<'a, str>`) with `MessageRead` / `MessageWrite` impls. pb-rs cannot parse `stream`
//!   rpcs and does not tell its rpc hook the package, so it is fed a copy of each file with the
//!   `service` blocks cut out.
//! * **Services** are read here, from the same text: for each `service` this writes a server
//!   trait, one marker type per method (the router's entry), a `…Server` wrapper that lists the
//!   routes, and a typed `…Client` stub.
//!
//! Everything lands in `$OUT_DIR/protos.rs`, one nested `pub mod` per protobuf package (a file
//! without a package gets a module named after the file, as pb-rs does), which `src/proto.rs`
//! includes. pb-rs writes one file per package and would let two files of the same package
//! overwrite each other, so each `.proto` is generated on its own and the results are merged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/descriptors.rs"]
mod descriptors;
#[path = "build/schema.rs"]
mod schema;

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        // A build script reports failure by exiting non-zero; the message is what cargo shows.
        eprintln!("rawgrpc build.rs: {e}");
        std::process::exit(1);
    }
}

fn run() -> BuildResult<()> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let proto_root = manifest.join("proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed=build");

    let mut protos = Vec::new();
    collect_protos(&proto_root, &mut protos)?;
    protos.sort();

    // 1. Read every file: its package, its services, and its text without the services.
    let stripped_root = out_dir.join("proto-messages");
    let _ = fs::remove_dir_all(&stripped_root);
    let mut files = Vec::new();
    for path in &protos {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&proto_root)?.to_path_buf();
        let parsed = parse_proto(&fs::read_to_string(path)?, &rel)?;
        let target = stripped_root.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, &parsed.without_services)?;
        files.push((rel, target, parsed));
    }

    // 2. Messages, one pb-rs run per file, merged per package.
    let mut modules: BTreeMap<Vec<String>, Module> = BTreeMap::new();
    let pb_out = out_dir.join("pb-rs");
    let _ = fs::remove_dir_all(&pb_out);
    for (i, (rel, stripped, parsed)) in files.iter().enumerate() {
        let module_path = module_path_of(&parsed.package, rel);
        let module = modules.entry(module_path).or_default();
        module.package = parsed.package.clone();
        if !parsed.has_types {
            continue; // pb-rs refuses a file with no message or enum (e.g. services only)
        }
        let dir = pb_out.join(i.to_string());
        fs::create_dir_all(&dir)?;
        let config = pb_rs::ConfigBuilder::new(
            std::slice::from_ref(stripped),
            None,
            Some(&dir),
            std::slice::from_ref(&stripped_root),
        )
        .map_err(|e| format!("{}: {e:?}", rel.display()))?
        .build();
        pb_rs::types::FileDescriptor::run(&config)
            .map_err(|e| format!("pb-rs on {}: {e:?}", rel.display()))?;
        let generated = find_generated(&dir)?;
        module.absorb(&fs::read_to_string(&generated)?)?;
    }

    // Every message's Rust name, by full protobuf name, for the service glue.
    let mut messages = BTreeMap::new();
    for (path, module) in &modules {
        for (name, has_lifetime) in &module.messages {
            let full = qualify(&module.package, name);
            messages.insert(full, (path.clone(), name.clone(), *has_lifetime));
        }
    }

    // 3. Service glue, into the module of the service's package.
    for (rel, _, parsed) in &files {
        let module_path = module_path_of(&parsed.package, rel);
        for service in &parsed.services {
            let glue = service_glue(service, &parsed.package, &module_path, &messages, rel)?;
            if let Some(module) = modules.get_mut(&module_path) {
                module.body.push_str(&glue);
            }
        }
    }

    fs::write(out_dir.join("protos.rs"), render_modules(&modules))?;

    // 4. Serialized descriptors of every file, for server reflection, and the message
    //    schemas the wire tracer prints field names with.
    let set = descriptors::parse(&proto_root, &protos)?;
    let files: Vec<_> = set.file.iter().collect();
    descriptors::generate(&files, &out_dir)?;
    schema::generate(&files, &out_dir)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> BuildResult<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn find_generated(dir: &Path) -> BuildResult<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "mod.rs")
            {
                return Ok(path);
            }
        }
    }
    Err(format!("pb-rs wrote no file in {}", dir.display()).into())
}

/// The Rust module path of a file: its package, or (no package) its file stem, like pb-rs.
fn module_path_of(package: &str, rel: &Path) -> Vec<String> {
    if package.is_empty() {
        let stem = rel.file_stem().map(|s| s.to_string_lossy().into_owned());
        vec![stem.unwrap_or_default()]
    } else {
        package.split('.').map(str::to_owned).collect()
    }
}

fn qualify(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

// ---------------------------------------------------------------------------------------------
// Reading .proto text: just enough to find the package and the service blocks.

struct ParsedProto {
    package: String,
    services: Vec<ServiceDef>,
    without_services: String,
    has_types: bool,
}

struct ServiceDef {
    name: String,
    methods: Vec<MethodDef>,
}

struct MethodDef {
    name: String,
    input: String,
    input_streaming: bool,
    output: String,
    output_streaming: bool,
}

/// Splits proto text into tokens: identifiers (with dots), strings, and single punctuation
/// characters; comments are dropped. Each token keeps its byte range in the source.
fn tokenize(src: &str) -> Vec<(usize, usize)> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i += 2;
            while i < bytes.len() && !bytes[i..].starts_with(b"*/") {
                i += 1;
            }
            i = (i + 2).min(bytes.len());
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            tokens.push((start, i));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
            tokens.push((start, i));
        } else {
            tokens.push((i, i + 1));
            i += 1;
        }
    }
    tokens
}

fn parse_proto(src: &str, rel: &Path) -> BuildResult<ParsedProto> {
    let spans = tokenize(src);
    let tok = |i: usize| spans.get(i).map(|&(a, b)| &src[a..b]).unwrap_or("");
    let err = |what: &str| format!("{}: {what}", rel.display());
    let mut package = String::new();
    let mut services = Vec::new();
    let mut cut = Vec::new(); // byte ranges of service blocks
    let mut has_types = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < spans.len() {
        match tok(i) {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "package" if depth == 0 => {
                package = tok(i + 1).to_owned();
            }
            "message" | "enum" if depth == 0 => has_types = true,
            "service" if depth == 0 => {
                let start = spans[i].0;
                let name = tok(i + 1).to_owned();
                if tok(i + 2) != "{" {
                    return Err(err(&format!("expected `{{` after service {name}")).into());
                }
                let mut j = i + 3;
                let mut methods = Vec::new();
                let mut inner = 0usize;
                loop {
                    match tok(j) {
                        "" => return Err(err(&format!("unterminated service {name}")).into()),
                        "}" if inner == 0 => break,
                        "{" => inner += 1,
                        "}" => inner -= 1,
                        "rpc" if inner == 0 => {
                            let (method, next) = parse_rpc(&tok, j).map_err(|e| err(&e))?;
                            methods.push(method);
                            j = next;
                            continue;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                cut.push((start, spans[j].1));
                services.push(ServiceDef { name, methods });
                i = j + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut without_services = String::with_capacity(src.len());
    let mut last = 0;
    for (a, b) in cut {
        without_services.push_str(&src[last..a]);
        last = b;
    }
    without_services.push_str(&src[last..]);
    Ok(ParsedProto {
        package,
        services,
        without_services,
        has_types,
    })
}

/// `rpc Name ( [stream] Type ) returns ( [stream] Type ) ( ; | { options } )`
fn parse_rpc<'s>(tok: &dyn Fn(usize) -> &'s str, at: usize) -> Result<(MethodDef, usize), String> {
    let name = tok(at + 1).to_owned();
    let mut j = at + 2;
    let side = |j: &mut usize| -> Result<(String, bool), String> {
        if tok(*j) != "(" {
            return Err(format!("rpc {name}: expected `(`"));
        }
        *j += 1;
        let streaming = tok(*j) == "stream" && tok(*j + 1) != ")";
        if streaming {
            *j += 1;
        }
        let ty = tok(*j).to_owned();
        if tok(*j + 1) != ")" {
            return Err(format!("rpc {name}: expected `)` after {ty}"));
        }
        *j += 2;
        Ok((ty, streaming))
    };
    let (input, input_streaming) = side(&mut j)?;
    if tok(j) != "returns" {
        return Err(format!("rpc {name}: expected `returns`"));
    }
    j += 1;
    let (output, output_streaming) = side(&mut j)?;
    match tok(j) {
        ";" => j += 1,
        "{" => {
            let mut depth = 0usize;
            loop {
                match tok(j) {
                    "" => return Err(format!("rpc {name}: unterminated options")),
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        other => return Err(format!("rpc {name}: unexpected `{other}`")),
    }
    let method = MethodDef {
        name,
        input,
        input_streaming,
        output,
        output_streaming,
    };
    Ok((method, j))
}

// ---------------------------------------------------------------------------------------------
// Merging pb-rs output into one module per package.

#[derive(Default)]
struct Module {
    package: String,
    uses: BTreeSet<String>,
    body: String,
    /// Top-level message structs: (name, has a `'a` lifetime).
    messages: Vec<(String, bool)>,
}

impl Module {
    fn absorb(&mut self, generated: &str) -> BuildResult<()> {
        let mut nested = false; // inside a `pub mod mod_X { … }` of nested types
        for line in generated.lines() {
            // Inner attributes cannot follow `include!` inside a module; the wrapping module
            // carries the same allows instead.
            if line.starts_with("#![") || line.starts_with("// Automatically generated") {
                continue;
            }
            // Nested modules (`mod_Message`, for oneofs and nested types) keep their own imports.
            if line.starts_with("use ") && !nested {
                // Files of one package repeat imports with different lists; split
                // `use a::{b, c};` into single imports so the merged set has no duplicates.
                match line.split_once("::{") {
                    Some((prefix, list)) => {
                        for item in list.trim_end_matches("};").split(',') {
                            self.uses.insert(format!("{prefix}::{};", item.trim()));
                        }
                    }
                    None => {
                        self.uses.insert(line.to_owned());
                    }
                }
                continue;
            }
            if line.starts_with("pub mod ") && line.trim_end().ends_with('{') {
                nested = true;
            } else if nested && line == "}" {
                nested = false;
            } else if !nested {
                if let Some(rest) = line.strip_prefix("pub struct ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let has_lifetime = rest[name.len()..].starts_with("<'a>");
                    self.messages.push((name, has_lifetime));
                }
            }
            // Strings are validated by rawgrpc's faster UTF-8 check (`codec::read_string`). A
            // pb-rs that wrote the call differently would silently keep the slower check, so
            // any other form fails the build.
            let line = line.replace(
                "r.read_string(bytes)",
                "::rawgrpc::codec::read_string(r, bytes)",
            );
            if line.contains(".read_string(") {
                return Err(format!(
                    "pb-rs reads a string in a form build.rs does not know: {line}"
                )
                .into());
            }
            self.body.push_str(&line);
            self.body.push('\n');
        }
        for (name, has_lifetime) in &self.messages {
            if self
                .body
                .contains(&format!("impl ::rawgrpc::Message for {name}"))
            {
                continue;
            }
            let full = qualify(&self.package, name);
            // Implemented for every lifetime of the type, not only `'static`: async code that
            // holds a `ResponseSink<User<'static>>` across an await is checked by the compiler
            // with that lifetime erased, and must still find the impl.
            let (generics, ty, view) = if *has_lifetime {
                ("<'x>", format!("{name}<'x>"), format!("{name}<'a>"))
            } else {
                ("", name.clone(), name.clone())
            };
            let _ = write!(
                self.body,
                "\nimpl{generics} ::rawgrpc::Message for {ty} {{\n    \
                 const NAME: &'static str = \"{full}\";\n    \
                 type View<'a> = {view};\n}}\n"
            );
        }
        Ok(())
    }
}

fn render_modules(modules: &BTreeMap<Vec<String>, Module>) -> String {
    let mut out = String::from(
        "// Generated by rawgrpc's build.rs from proto/: messages by pb-rs, services by build.rs.\n\
         // Do not edit; change the .proto instead.\n",
    );
    let mut open: Vec<String> = Vec::new();
    for (path, module) in modules {
        let common = open.iter().zip(path).take_while(|(a, b)| a == b).count();
        while open.len() > common {
            open.pop();
            out.push_str("}\n");
        }
        for segment in &path[common..] {
            let _ = writeln!(
                out,
                "#[allow(non_snake_case, non_upper_case_globals, non_camel_case_types, \
                 unused_imports, unknown_lints, clippy::all, clippy::pedantic, missing_docs)]\n\
                 pub mod {segment} {{"
            );
            open.push(segment.clone());
        }
        for u in &module.uses {
            out.push_str(u);
            out.push('\n');
        }
        out.push_str(&module.body);
    }
    while open.pop().is_some() {
        out.push_str("}\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Service glue.

fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_numeric());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (chars[i - 1].is_uppercase() && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Rust type of a message named in an rpc, as seen from the service's module, with the
/// lifetime to give it (`'a` for the borrowed view, `'static` for the family marker).
fn rust_type(
    proto_name: &str,
    package: &str,
    from: &[String],
    messages: &BTreeMap<String, (Vec<String>, String, bool)>,
    lifetime: &str,
) -> Result<String, String> {
    // Protobuf name resolution: a leading dot is absolute; otherwise try the innermost scope
    // (the service's package) outwards.
    let candidates: Vec<String> = if let Some(abs) = proto_name.strip_prefix('.') {
        vec![abs.to_owned()]
    } else {
        let mut scopes: Vec<&str> = package.split('.').filter(|s| !s.is_empty()).collect();
        let mut v = Vec::new();
        loop {
            let prefix = scopes.join(".");
            v.push(qualify(&prefix, proto_name));
            if scopes.pop().is_none() {
                break;
            }
        }
        v
    };
    let (path, name, has_lifetime) = candidates
        .iter()
        .find_map(|c| messages.get(c))
        .ok_or_else(|| format!("unknown message type {proto_name}"))?;
    let mut ty = if path == from {
        name.clone()
    } else {
        // Every generated module glob-imports the root, so a root-relative path resolves.
        format!("{}::{name}", path.join("::"))
    };
    if *has_lifetime {
        let _ = write!(ty, "<{lifetime}>");
    }
    Ok(ty)
}

fn service_glue(
    service: &ServiceDef,
    package: &str,
    module_path: &[String],
    messages: &BTreeMap<String, (Vec<String>, String, bool)>,
    rel: &Path,
) -> BuildResult<String> {
    let svc = &service.name;
    let full = qualify(package, svc);
    let module = snake_case(svc);
    let ty = |name: &str, lifetime: &str| {
        rust_type(name, package, module_path, messages, lifetime)
            .map_err(|e| format!("{}: service {svc}: {e}", rel.display()))
    };
    let mut trait_methods = String::new();
    let mut markers = String::new();
    let mut routes = String::new();
    let mut client = String::new();
    for m in &service.methods {
        let fn_name = snake_case(&m.name);
        let path = format!("/{full}/{}", m.name);
        let req_a = ty(&m.input, "'a")?;
        let resp_a = ty(&m.output, "'a")?;
        let req_s = ty(&m.input, "'static")?;
        let resp_s = ty(&m.output, "'static")?;
        let req_anon = ty(&m.input, "'_")?;
        let rpc = format!(
            "rpc {} ({}{}) returns ({}{})",
            m.name,
            if m.input_streaming { "stream " } else { "" },
            m.input,
            if m.output_streaming { "stream " } else { "" },
            m.output
        );
        // What differs between the four call kinds: the marker trait and route constructor,
        // the handler's parameters and result, and what the client stub returns.
        let sink = format!("responses: ::rawgrpc::server::ResponseSink<{resp_s}>");
        let stream_in = format!("requests: ::rawgrpc::Request<::rawgrpc::Streaming<{req_s}>>");
        let one_in = format!("request: ::rawgrpc::Request<{req_a}>");
        let one_out = format!("::rawgrpc::Response<{resp_a}>");
        let (kind, ctor, params, args, output) = match (m.input_streaming, m.output_streaming) {
            (false, false) => ("UnaryMethod", "unary", one_in, "request", one_out),
            (false, true) => (
                "ServerStreamingMethod",
                "server_streaming",
                format!("{one_in}, {sink}"),
                "request, responses",
                "()".to_owned(),
            ),
            (true, false) => (
                "ClientStreamingMethod",
                "client_streaming",
                stream_in,
                "requests",
                one_out,
            ),
            (true, true) => (
                "BidiStreamingMethod",
                "bidi_streaming",
                format!("{stream_in}, {sink}"),
                "requests, responses",
                "()".to_owned(),
            ),
        };
        let future = format!(
            "impl ::core::future::Future<Output = ::core::result::Result<{output}, \
             ::rawgrpc::Status>> + ::core::marker::Send + 'a"
        );
        let _ = write!(
            trait_methods,
            "    /// `{rpc}`, served at `{path}`.\n    \
             fn {fn_name}<'a>(&'a self, {params}) -> {future};\n",
        );
        let _ = write!(
            markers,
            "    /// The route entry of `{path}`.\n    pub struct {name};\n\n    \
             impl<S: super::{svc} + ?Sized> ::rawgrpc::server::{kind}<S> for {name} {{\n        \
             const PATH: &'static str = \"{path}\";\n        \
             type Request = {req_s};\n        type Response = {resp_s};\n        \
             fn call<'a>(service: &'a S, {params}) -> {future} {{\n            \
             service.{fn_name}({args})\n        }}\n    }}\n\n",
            name = m.name,
        );
        let _ = writeln!(
            routes,
            "            ::rawgrpc::server::Route::{ctor}::<{module}::{name}, S>(::std::sync::Arc::clone(&self.service)),",
            name = m.name,
        );
        let (arg, returns, body) = match (m.input_streaming, m.output_streaming) {
            (false, false) => (
                req_anon,
                format!("::rawgrpc::Response<::rawgrpc::Decoded<{resp_s}>>"),
                "unary",
            ),
            (false, true) => (
                req_anon,
                format!("::rawgrpc::Response<::rawgrpc::Streaming<{resp_s}>>"),
                "server_streaming",
            ),
            (true, _) => (
                "()".to_owned(),
                format!(
                    "(::rawgrpc::client::RequestSink<{req_s}>, \
                     ::rawgrpc::client::PendingResponse<{resp_s}>)"
                ),
                "streaming",
            ),
        };
        let _ = write!(
            client,
            "    /// Calls `{path}` (`{rpc}`).\n    pub async fn {fn_name}(&self, request: impl \
             ::rawgrpc::IntoRequest<{arg}>) -> ::core::result::Result<{returns}, \
             ::rawgrpc::Status> {{\n        \
             self.channel.{body}(\"{path}\", request.into_request()).await\n    }}\n\n",
        );
    }
    Ok(format!(
        r#"
/// The server side of `{full}` (from `proto/{file}`): implement it, then serve it with
/// [`{svc}Server`].
pub trait {svc}: ::core::marker::Send + ::core::marker::Sync + 'static {{
{trait_methods}}}

/// One marker type per method of `{full}`: each binds a path to a method of [`{svc}`].
pub mod {module} {{
    use super::*;

{markers}}}

/// Adapts an implementation of [`{svc}`] to the router.
pub struct {svc}Server<S> {{
    service: ::std::sync::Arc<S>,
}}

impl<S: {svc}> {svc}Server<S> {{
    /// Wraps the service implementation.
    pub fn new(service: S) -> Self {{
        Self::from_arc(::std::sync::Arc::new(service))
    }}

    /// Wraps a service implementation that is shared with other code.
    pub fn from_arc(service: ::std::sync::Arc<S>) -> Self {{
        Self {{ service }}
    }}
}}

impl<S: {svc}> ::rawgrpc::server::Service for {svc}Server<S> {{
    const NAME: &'static str = "{full}";

    fn routes(&self) -> ::std::vec::Vec<::rawgrpc::server::Route> {{
        ::std::vec![
{routes}        ]
    }}
}}

/// A typed client of `{full}`: one method per rpc, over a shared [`::rawgrpc::client::Channel`].
#[derive(Clone, Debug)]
pub struct {svc}Client {{
    channel: ::rawgrpc::client::Channel,
}}

impl {svc}Client {{
    /// A client that sends its calls over `channel`.
    pub fn new(channel: ::rawgrpc::client::Channel) -> Self {{
        Self {{ channel }}
    }}

{client}}}
"#,
        file = rel.display(),
    ))
}
