//! The pipeline: routes pick events, plugin chains filter and transform
//! them, route plugins and static lists name endpoints, and each endpoint's
//! format plugin turns the event into the request it will receive.

mod wit_event;

pub use wit_event::to_wit_event;
