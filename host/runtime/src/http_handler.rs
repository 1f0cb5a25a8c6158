//! `wasi:http/outgoing-handler.handle` as wasmtime-wasi-http implements it, plus the one
//! thing it forgets: the `request-options` handle a guest passes is an owned handle (the
//! WIT says `option<request-options>`, not `borrow<…>`), so the host must drop it.
//! wasmtime-wasi-http 48 reads the options and leaves them in the resource table: one
//! entry per request, until a long-lived session hit the table's cap (2,048 entries) on
//! its ~2,045th request and restarted (issue 22, item 8).

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as _;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Host as _, RequestOptions};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};

/// The interface, as wasmtime-wasi-http's WIT names it (the linker matches any 0.2.x).
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// Links `wasi:http` as wasmtime-wasi-http's `add_only_http_to_linker_async` does, then
/// shadows its `handle` with one that deletes the options it was handed.
pub(crate) fn add_http_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    linker.allow_shadowing(true);
    let defined = linker.instance(OUTGOING_HANDLER).and_then(|mut handler| {
        handler.func_wrap(
            "handle",
            |mut store,
             (request, options): (
                Resource<HostOutgoingRequest>,
                Option<Resource<RequestOptions>>,
            )|
             -> wasmtime::Result<(
                Result<Resource<HostFutureIncomingResponse>, ErrorCode>,
            )> {
                let mut http = store.data_mut().http();
                // wasmtime's handler reads the options through a borrowed handle of the
                // same entry; the entry itself is deleted afterwards, whatever the outcome.
                let rep = options.as_ref().map(Resource::rep);
                let lent = rep.map(Resource::<RequestOptions>::new_borrow);
                let answer = http.handle(request, lent);
                if let Some(rep) = rep {
                    http.table
                        .delete(Resource::<RequestOptions>::new_own(rep))?;
                }
                Ok((match answer {
                    Ok(future) => Ok(future),
                    Err(e) => Err(http.convert_error_code(e)?),
                },))
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}
