//! The gRPC transport: one HTTP/2 channel, the bearer token on every call, and requests
//! encoded from a shared reference, so that a retried call sends the same message
//! without copying its key or value again.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::Status;

use crate::error::Error;

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
pub(crate) struct Auth(Option<MetadataValue<Ascii>>);

impl Auth {
    pub(crate) fn new(token: Option<&str>) -> Result<Auth, Error> {
        match token {
            None => Ok(Auth(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| Auth(Some(v)))
                .map_err(|_| Error::invalid_address("the auth token is not valid in a gRPC header")),
        }
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The channel with the token interceptor; cheap to clone.
#[derive(Clone)]
pub(crate) struct Rpc {
    svc: InterceptedService<Channel, Auth>,
}

impl Rpc {
    pub(crate) fn new(channel: Channel, auth: Auth) -> Rpc {
        Rpc { svc: InterceptedService::new(channel, auth) }
    }

    fn grpc(&self) -> tonic::client::Grpc<InterceptedService<Channel, Auth>> {
        // The sidecar is local and bounds what it accepts itself; BatchGet of many large
        // values exceeds tonic's 4 MiB default.
        tonic::client::Grpc::new(self.svc.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// One unary call of method (`"Get"`) with msg, under timeout.
    pub(crate) async fn unary<Req, Resp>(&self, method: &'static str, msg: Arc<Req>, timeout: Duration) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        let mut grpc = self.grpc();
        grpc.ready().await.map_err(|e| Status::unavailable(format!("the channel is not ready: {e}")))?;
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout); // the sidecar stops working on it, too, at the deadline
        let r = grpc.unary(req, path(method), SharedCodec::<Req, Resp>::default()).await?;
        Ok(r.into_inner())
    }

    /// A server-streaming call.
    pub(crate) async fn server_streaming<Req, Resp>(
        &self,
        method: &'static str,
        msg: Arc<Req>,
        timeout: Duration,
    ) -> Result<tonic::Streaming<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        let mut grpc = self.grpc();
        grpc.ready().await.map_err(|e| Status::unavailable(format!("the channel is not ready: {e}")))?;
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        let r = grpc.server_streaming(req, path(method), SharedCodec::<Req, Resp>::default()).await?;
        Ok(r.into_inner())
    }
}

fn path(method: &'static str) -> PathAndQuery {
    PathAndQuery::from_maybe_shared(format!("/cachee.v1.CacheService/{method}")).expect("a valid path")
}

/// A prost codec whose requests are `Arc<Req>`: encoding reads the message where it is.
struct SharedCodec<Req, Resp>(PhantomData<fn(Req) -> Resp>);

impl<Req, Resp> Default for SharedCodec<Req, Resp> {
    fn default() -> Self {
        SharedCodec(PhantomData)
    }
}

impl<Req, Resp> Codec for SharedCodec<Req, Resp>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    type Encode = Arc<Req>;
    type Decode = Resp;
    type Encoder = SharedEncoder<Req>;
    type Decoder = ProstDecoder<Resp>;

    fn encoder(&mut self) -> Self::Encoder {
        SharedEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

struct SharedEncoder<Req>(PhantomData<fn(Req)>);

impl<Req: prost::Message + Send + Sync + 'static> Encoder for SharedEncoder<Req> {
    type Item = Arc<Req>;
    type Error = Status;

    fn encode(&mut self, item: Arc<Req>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf).map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

struct ProstDecoder<Resp>(PhantomData<fn() -> Resp>);

impl<Resp: prost::Message + Default + Send + 'static> Decoder for ProstDecoder<Resp> {
    type Item = Resp;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Resp>, Status> {
        Resp::decode(buf).map(Some).map_err(|e| Status::internal(format!("decode: {e}")))
    }
}
