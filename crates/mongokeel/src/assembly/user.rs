//! The user's layers at the assembly's two named points: around the whole call and around each
//! attempt.

use tower::{Layer, Service, util::Either};

use super::{AnyValue, KeelRequest, KeelService};
use keel_core::Error;

type Wrap = Box<dyn FnOnce(KeelService) -> KeelService + Send + Sync>;

/// A `tower` layer that fits at one of the assembly's two user points
/// ([`layer_around_call`](crate::KeelBuilder::layer_around_call),
/// [`layer_around_attempt`](crate::KeelBuilder::layer_around_attempt)): it wraps a
/// [`KeelService`] into a cloneable, sendable service of [`KeelRequest`]s answering the
/// [`AnyValue`] it was handed. Implemented for every such layer; a layer written for any
/// `Service<Operation<T>>` fits.
pub trait UserLayer: Layer<KeelService, Service = Self::Wrapped> + Send + Sync + 'static {
    /// The service the layer makes.
    type Wrapped: Service<KeelRequest, Response = AnyValue, Error = Error, Future = Self::WrappedFuture>
        + Clone
        + Send
        + Sync
        + 'static;
    /// The wrapped service's future.
    type WrappedFuture: Send + 'static;
}

impl<L> UserLayer for L
where
    L: Layer<KeelService> + Send + Sync + 'static,
    L::Service:
        Service<KeelRequest, Response = AnyValue, Error = Error> + Clone + Send + Sync + 'static,
    <L::Service as Service<KeelRequest>>::Future: Send + 'static,
{
    type Wrapped = L::Service;
    type WrappedFuture = <L::Service as Service<KeelRequest>>::Future;
}

/// Layers added at one point, first added outermost (as in `tower::ServiceBuilder`).
#[derive(Default)]
pub(crate) struct UserLayers {
    layers: Vec<Wrap>,
}

impl std::fmt::Debug for UserLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserLayers({})", self.layers.len())
    }
}

impl UserLayers {
    pub(crate) fn push(&mut self, layer: impl UserLayer) {
        self.layers
            .push(Box::new(move |inner| KeelService::new(layer.layer(inner))));
    }

    /// `inner` itself when no layer was added (nothing boxed, nothing paid), else `inner` boxed
    /// and wrapped in the layers.
    pub(super) fn wrap<S>(self, inner: S) -> Either<S, KeelService>
    where
        S: Service<KeelRequest, Response = AnyValue, Error = Error> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        if self.layers.is_empty() {
            return Either::Left(inner);
        }
        let mut service = KeelService::new(inner);
        for wrap in self.layers.into_iter().rev() {
            service = wrap(service);
        }
        Either::Right(service)
    }
}
