//! Deribit API v2 wire types: the JSON-RPC envelope, methods and error codes.
