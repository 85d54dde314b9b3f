"""The registry's gRPC servicers, one module per service: parse, call one workflow, convert."""
