// File: grpc_bidi_transport.h
//
// The legacy Flower transport: one bidirectional stream
// /flwr.proto.FlowerService/Join per session, as served by Flower's
// start_server (flwr.server.start_server) and by petal-server.
//
// A session opens Join and sends nothing (the server registers a client as
// soon as its stream starts), then runs in strict lock-step: for each
// ServerMessage it calls the Client and sends exactly one ClientMessage
// (client/message_handler.h). A ReconnectIns is answered with
// DisconnectRes(RECONNECT); the stream is then closed and, if `seconds` > 0,
// a new session opens after that many seconds; `seconds` == 0 (Flower's
// goodbye at the end of a run) makes Run() return OK.
//
// Connection attempts that fail (server down, refused, TLS handshake error,
// connect_timeout) are retried with ConnectionOptions::retry; its budget starts
// over whenever a session reaches the server. A session that breaks (server
// gone) is followed by a new attempt after a backoff delay; the delay level
// resets once a session has answered an instruction. A ServerMessage without a
// known instruction is not answered: the stream is closed (the server counts a
// failure) and the client reconnects as after a broken session.
//
// Each session uses a fresh channel with its own subchannel pool; nothing is
// shared between transports. Run() drives the stream from the calling thread
// with a private completion queue; Stop() cancels the call and interrupts every
// wait.
#pragma once

#include "absl/status/statusor.h"
#include "client/transport.h"

namespace petal::client {

// InvalidArgument for bad options; NotFound/InvalidArgument if the root
// certificates cannot be loaded.
absl::StatusOr<TransportPtr> MakeGrpcBidiTransport(ConnectionOptions options);

}  // namespace petal::client
