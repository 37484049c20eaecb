#pragma once
// TCP + protobuf worker protocol (uint32LE length prefix, Envelope oneof), sessions and the client.
// Not implemented yet: this target only reserves the layer in the dependency graph (see issue "aitw serve").
namespace aitw::net {}
